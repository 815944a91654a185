"""What a session keeps of the client's ``clientInfo``: a few short strings, shown to the owner."""

from __future__ import annotations

from skillrelay_edge.protocol.lifecycle import MAX_CLIENT_INFO_CHARS, session_state_from_initialize


def test_client_info_is_kept_small_whatever_the_client_sends() -> None:
    state = session_state_from_initialize(
        {
            "capabilities": {"roots": {}},
            "clientInfo": {
                "name": "claude-code",
                "version": "2.1.0",
                "title": "x" * 10_000,
                "icons": [{"src": "data:" + "A" * 50_000}],
                "websiteUrl": "https://example.com",
            },
        }
    )
    assert state["clientCapabilities"] == {"roots": {}}
    assert state["clientInfo"] == {
        "name": "claude-code",
        "version": "2.1.0",
        "title": "x" * MAX_CLIENT_INFO_CHARS,
    }
    for odd in (None, "a string", ["list"], {"name": 7, "version": ""}):
        assert session_state_from_initialize({"clientInfo": odd})["clientInfo"] == {}
