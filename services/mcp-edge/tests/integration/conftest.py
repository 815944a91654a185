from __future__ import annotations

from collections.abc import Iterator

import pytest

from skillrelay_devstack.edge import ControlPlane, EdgeHarness, demo_skillset


@pytest.fixture(scope="module")
def control() -> ControlPlane:
    plane = ControlPlane()
    plane.add("mcpserver_demo", demo_skillset())
    plane.add("mcpserver_renew", demo_skillset("skillset_renew"), session_mode="renew")
    return plane


@pytest.fixture(scope="module")
def edge(nats_url: str, control: ControlPlane) -> Iterator[EdgeHarness]:
    harness = EdgeHarness(nats_url, control)
    harness.start()
    yield harness
    harness.stop()
