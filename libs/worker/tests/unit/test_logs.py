import json

import pytest
import structlog

from skillrelay_worker.correlation import bind_correlation_id, correlation_scope
from skillrelay_worker.logs import RepeatedWarning, configure_logging


def test_secret_fields_are_redacted_and_output_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=True, service="unit")
    structlog.get_logger().info("token.checked", token="sr_mcp_secret", integration_id="mcpserver_1")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "token.checked"
    assert record["token"] == "[redacted]"
    assert record["integration_id"] == "mcpserver_1"
    assert "sr_mcp_secret" not in line
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


async def test_log_lines_carry_the_bound_correlation_id(capsys: pytest.CaptureFixture[str]) -> None:
    # async: each test task has its own context, so the binding ends with the test.
    configure_logging("info", json=True, service="unit")
    log = structlog.get_logger()
    log.info("before")
    bind_correlation_id("req-1")
    log.info("bound")
    with correlation_scope("req-2", subject="a.b"):
        log.info("scoped")
    log.info("after")
    records = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()[-4:]]
    assert [record.get("correlation_id") for record in records] == [None, "req-1", "req-2", "req-1"]
    assert records[2]["subject"] == "a.b" and "subject" not in records[3]
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def test_a_repeated_warning_is_logged_at_most_every_interval_with_a_count_of_the_rest() -> None:
    now = [100.0]
    with structlog.testing.capture_logs() as logs:
        warn = RepeatedWarning(structlog.get_logger(), "x.failed", every=5.0, clock=lambda: now[0])
        warn(error="first")
        for _ in range(3):
            now[0] += 1.0
            warn(error="again")
        now[0] += 2.0  # 5 s after the first
        warn(error="later")
        now[0] += 1.0
        warn(error="quiet")
    assert [(entry["error"], entry.get("left_out")) for entry in logs] == [("first", None), ("later", 3)]
    assert all(entry["log_level"] == "warning" and entry["event"] == "x.failed" for entry in logs)
