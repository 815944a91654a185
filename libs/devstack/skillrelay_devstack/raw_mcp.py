"""A raw MCP client over Streamable HTTP (no SDK), as tests speak to the edge through any HTTP client:
the initialize request, the server's event stream read line by line, and the resumption of a stream
broken mid-call (``Last-Event-ID``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import httpx


def initialize_request(
    name: str = "t", version: str = "1", capabilities: dict[str, Any] | None = None, request_id: int = 0
) -> dict[str, Any]:
    """A 2025-11-25 ``initialize`` of a client called ``name`` (``version``) with ``capabilities``."""
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": capabilities or {},
        "clientInfo": {"name": name, "version": version},
    }
    return {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}


# A worker tool of the everything example that reports progress 0, 50, 100 and answers its progress token.
PROGRESS_CALL: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 9,
    "method": "tools/call",
    "params": {"name": "test_tool_with_progress", "arguments": {}, "_meta": {"progressToken": "p9"}},
}


def stream_events(lines: Iterable[str]) -> Iterator[tuple[str | None, dict[str, Any] | None]]:
    """(event id, JSON data) per server-sent event; data None for priming events."""
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            payload = "\n".join(data).strip()
            if event_id is not None or payload:
                yield event_id, (json.loads(payload) if payload else None)
            event_id, data = None, []
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def resume_a_broken_call(
    client: httpx.Client, call_url: str, resume_url: str, headers: dict[str, str]
) -> list[dict[str, Any]]:
    """POST ``PROGRESS_CALL`` to ``call_url`` and drop the connection after its first event (a progress
    notification); then GET ``resume_url`` with that event's id as ``Last-Event-ID``. Returns the
    messages the resumed stream replays, up to and with the call's answer."""
    with client.stream("POST", call_url, headers=headers, json=PROGRESS_CALL) as sse:
        assert sse.status_code == 200
        assert sse.headers["content-type"].startswith("text/event-stream")
        last_id, first = next((event_id, data) for event_id, data in stream_events(sse.iter_lines()) if data)
        assert first is not None and first["method"] == "notifications/progress"
        assert last_id is not None
    seen: list[dict[str, Any]] = []
    resume_headers = {**headers, "Accept": "text/event-stream", "Last-Event-ID": last_id}
    with client.stream("GET", resume_url, headers=resume_headers) as resumed:
        assert resumed.status_code == 200
        for _, data in stream_events(resumed.iter_lines()):
            if data:
                seen.append(data)
            if data and data.get("id") == PROGRESS_CALL["id"]:
                break
    return seen
