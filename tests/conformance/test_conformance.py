"""The official MCP conformance suite, pinned (``package.json`` / ``package-lock.json``), against the
everything example served by the whole stack: every server scenario of the active suite passes, no
expected-failures file."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from everything_worker import node_tools as node_tools_module
from skillrelay_devstack.everything import Deployment, everything_deployment, fresh_database, log_tail

# The first test also pays for starting the whole stack (and, once, `npm ci`).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SUITE_TIMEOUT = 240


@pytest.fixture(scope="module")
def node_tools() -> Path:
    node_tools_module.install()
    assert node_tools_module.CONFORMANCE.exists()
    return node_tools_module.CONFORMANCE


@pytest.fixture(scope="module")
def deployment(
    nats_url: str, postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("conformance")
    with (
        fresh_database(postgres_admin_url) as database_url,
        everything_deployment(
            state_dir=root / "state", nats_url=nats_url, database_url=database_url, log_dir=root / "logs"
        ) as running,
    ):
        yield running


def read_checks(results: Path) -> dict[str, list[dict[str, object]]]:
    """``{scenario: [check, ...]}`` from the suite's ``-o`` folder (one ``checks.json`` per scenario)."""
    checks: dict[str, list[dict[str, object]]] = {}
    for path in sorted(results.glob("server-*/checks.json")):
        scenario = re.sub(r"-\d{4}-\d{2}-\d{2}T.*$", "", path.parent.name.removeprefix("server-"))
        checks[scenario] = json.loads(path.read_text())
    return checks


# The active suite of the pinned 0.1.16 (``conformance list --server`` minus the two pending ones).
ACTIVE_SCENARIOS = [
    "server-initialize",
    "logging-set-level",
    "ping",
    "completion-complete",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-with-logging",
    "tools-call-error",
    "tools-call-with-progress",
    "tools-call-sampling",
    "tools-call-elicitation",
    "elicitation-sep1034-defaults",
    "server-sse-multiple-streams",
    "elicitation-sep1330-enums",
    "resources-list",
    "resources-read-text",
    "resources-read-binary",
    "resources-templates-read",
    "resources-subscribe",
    "resources-unsubscribe",
    "prompts-list",
    "prompts-get-simple",
    "prompts-get-with-args",
    "prompts-get-embedded-resource",
    "prompts-get-with-image",
    "dns-rebinding-protection",
]


def test_every_active_server_scenario_passes(
    node_tools: Path, deployment: Deployment, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    run = subprocess.run(
        [
            "node",
            str(node_tools),
            "server",
            "--url",
            deployment.registration.url_with_token,
            "--suite",
            "active",
            "-o",
            str(results),
        ],
        env=node_tools_module.node_env(),
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT,
        cwd=tmp_path,
    )
    output = run.stdout + run.stderr
    checks = read_checks(results)
    not_passing = {
        scenario: [c for c in items if c.get("status") in ("FAILURE", "WARNING")]
        for scenario, items in checks.items()
    }
    not_passing = {scenario: items for scenario, items in not_passing.items() if items}
    logs = log_tail(deployment.stack.log_dir) if deployment.stack.log_dir else ""
    assert run.returncode == 0 and not not_passing, (
        f"suite exited {run.returncode}\n{output[-4000:]}\n"
        f"not passing: {json.dumps(not_passing, indent=1)[:6000]}\n{logs}"
    )
    assert sorted(checks) == sorted(ACTIVE_SCENARIOS), output[-4000:]
    for scenario, items in checks.items():
        assert any(c.get("status") == "SUCCESS" for c in items), (scenario, items)
    assert output.rstrip().splitlines()[-1].endswith(" 0 failed"), output[-2000:]
