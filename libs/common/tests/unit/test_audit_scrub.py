"""The audit scrubber: no token or secret survives into a record, and records stay small."""

import msgspec

from skillrelay_common.schemas.audit import REDACTED, AuditData, AuditRecord, scrub, scrub_text


def test_secret_named_keys_are_redacted_at_any_depth() -> None:
    cleaned = scrub(
        {
            "tool": "echo",
            "token": "sr_mcp_abc",
            "headers": {"Authorization": "Bearer xyz", "accept": "json"},
            "client_secret": "s3cr3t",
            "refresh_token": "r",
            "code": "authcode",
            "token_version": 3,
            "items": [{"password": "p"}],
        }
    )
    assert cleaned == {
        "tool": "echo",
        "token": REDACTED,
        "headers": {"Authorization": REDACTED, "accept": "json"},
        "client_secret": REDACTED,
        "refresh_token": REDACTED,
        "code": REDACTED,
        "token_version": 3,
        "items": [{"password": REDACTED}],
    }


def test_credential_looking_values_are_redacted_under_innocent_keys() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
    secret = "sr_mcp_" + "A" * 43
    text = scrub_text(f"reason: bad Bearer abc.def {jwt} {secret} /mcp?token=qwerty&x=1")
    for leaked in ("abc.def", jwt, secret, "qwerty"):
        assert leaked not in text
    assert "reason: bad" in text and "x=1" in text


def test_sizes_are_bounded() -> None:
    cleaned = scrub({"long": "x" * 10_000, "many": list(range(500)), "deep": {"a": {"b": {"c": {"d": 1}}}}})
    assert len(cleaned["long"]) <= 513
    assert len(cleaned["many"]) == 51
    assert cleaned["deep"] == {"a": {"b": {"c": "…"}}}
    assert scrub({"obj": object()}) == {"obj": "<object>"}


def test_envelope_is_cloudevents_shaped_json() -> None:
    record = AuditRecord(
        id="1",
        source="/skillrelay/edge/edge-1",
        type="dev.skillrelay.audit.v1.tool.call",
        time="2026-01-01T00:00:00.000Z",
        subject="mcpserver_x",
        data=AuditData(kind="tool.call", outcome="ok", latency_ms=1.5),
    )
    decoded = msgspec.json.decode(msgspec.json.encode(record))
    assert decoded["specversion"] == "1.0"
    assert decoded["datacontenttype"] == "application/json"
    assert decoded["subject"] == "mcpserver_x"
    assert decoded["data"] == {"kind": "tool.call", "outcome": "ok", "latency_ms": 1.5}


def test_audit_stream_limits_come_from_settings() -> None:
    from skillrelay_common.audit import audit_stream, stream_config
    from skillrelay_common.settings import Settings

    settings = Settings.from_env(
        {
            "SKILLRELAY_AUDIT_MAX_AGE": "3600",
            "SKILLRELAY_AUDIT_MAX_BYTES": "1048576",
            "SKILLRELAY_AUDIT_REPLICAS": "3",
        }
    )
    config = stream_config(audit_stream(settings))
    assert (config.name, config.subjects) == ("AUDIT", ["audit.>"])
    assert (config.max_age, config.max_bytes, config.num_replicas) == (3600.0, 1048576, 3)
    assert config.storage is not None and config.storage.value == "file"
    defaults = stream_config(audit_stream(Settings.from_env({})))
    assert (defaults.max_age, defaults.num_replicas) == (30 * 24 * 3600.0, 1)
