import json

import pytest
import structlog

from skillrelay_common.logging import configure_logging


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
