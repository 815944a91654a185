"""Whole-stack fixtures: every service as its own process, on the test session's NATS and a fresh
database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from skillrelay_common import bus_auth
from skillrelay_devstack.stack import Stack


@pytest.fixture
def stack(
    nats_url: str,
    nats_system_url: str,
    nats_secrets: bus_auth.BusSecrets,
    database_url: str,
    tmp_path: Path,
) -> Iterator[Stack]:
    """One stack with one edge replica. Service logs land in ``tmp_path/logs`` (printed on failure)."""
    running = Stack.on_free_ports(tmp_path / "state", edge_replicas=1, log_dir=tmp_path / "logs")
    running.nats_url = nats_url
    running.nats_system_url = nats_system_url
    running.nats_callout_seed = nats_secrets.callout_seed
    running.database_url = database_url
    running.start()
    yield running
    running.stop()
