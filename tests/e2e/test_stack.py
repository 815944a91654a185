"""The launcher brings every service up, each answers health and readiness, and stops cleanly."""

import httpx
import pytest

from skillrelay_devstack.stack import Stack

pytestmark = pytest.mark.slow


def test_every_http_service_is_healthy_and_ready(stack: Stack) -> None:
    urls = [stack.registry_url, stack.auth_url, *stack.edge_urls]
    for url in urls:
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
        ready = httpx.get(f"{url}/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["nats"] is True
    assert httpx.get(f"{stack.registry_url}/ready").json()["checks"]["database"] is True


def test_stop_ends_every_process(stack: Stack) -> None:
    assert all(service.alive() for service in stack.services)
    stack.stop()
    assert not any(service.alive() for service in stack.services)
