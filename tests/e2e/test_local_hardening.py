"""What a local stack (``make run``'s launcher) exposes: forwarded headers are not believed from
anyone, and its secrets and logs are readable by their owner only."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from skillrelay_devstack.stack import Stack, running_stack

pytestmark = pytest.mark.slow


@pytest.fixture
def limited_stack(nats_url: str, database_url: str, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(
        tmp_path / "state",
        nats_url=nats_url,
        database_url=database_url,
        log_dir=tmp_path / "logs",
        extra_env={"SKILLRELAY_OAUTH_REGISTRATIONS_PER_MINUTE": "3"},
    ) as running:
        yield running


def test_a_local_client_cannot_dodge_the_registration_limit_with_forwarded_headers(
    limited_stack: Stack,
) -> None:
    """Regression: 127.0.0.1 was a trusted proxy by default, so each made-up X-Forwarded-For was a new
    client with a fresh budget of registrations."""
    statuses = []
    with httpx.Client(timeout=10) as http:
        for index in range(8):
            answer = http.post(
                f"{limited_stack.auth_url}/oauth/mcpserver_nope/register",
                json={"redirect_uris": ["http://127.0.0.1:1/cb"]},
                headers={"X-Forwarded-For": f"203.0.113.{index}", "Forwarded": f"for=198.51.100.{index}"},
            )
            statuses.append(answer.status_code)
    assert statuses.count(429) >= 5, statuses


def test_secrets_state_and_logs_are_owner_only(limited_stack: Stack) -> None:
    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(limited_stack.state_dir) == 0o700
    for secret in ("admin-token", "secret-key"):
        assert mode(limited_stack.state_dir / secret) == 0o600, secret
    assert limited_stack.log_dir is not None
    logs = list(limited_stack.log_dir.glob("*.log"))
    assert logs and all(mode(log) == 0o600 for log in logs), {log.name: oct(mode(log)) for log in logs}
    assert all(limited_stack.admin_token not in log.read_text(errors="replace") for log in logs)
