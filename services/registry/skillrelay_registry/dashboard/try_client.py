"""The "Try it" panel's MCP client: one request through the real edge, as any MCP client would send it.

The registry opens a session with the token the owner pasted (``initialize``, ``notifications/initialized``),
sends the one request, reads its answer (JSON or an SSE stream), and ends the session (``DELETE``). The
token is used for these requests only: it is never stored, logged, or put back into a page.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

PROTOCOL_VERSION = "2025-11-25"
CLIENT_INFO = {"name": "skillrelay-dashboard", "title": "Skillrelay dashboard (Try it)", "version": "1"}
TIMEOUT_SECONDS = 30.0
MAX_ANSWER_BYTES = 4 * 1024 * 1024
_ACCEPT = "application/json, text/event-stream"


@dataclass(frozen=True)
class TryOutcome:
    """What came back: a JSON-RPC ``result`` or ``error``, or a ``problem`` before that (HTTP status,
    refused token, edge unreachable)."""

    latency_ms: float
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    problem: str | None = None
    http_status: int | None = None

    @property
    def answer(self) -> dict[str, Any]:
        if self.result is not None:
            return {"result": self.result}
        if self.error is not None:
            return {"error": self.error}
        return {}


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _rpc_message(body: bytes) -> str:
    try:
        decoded = json.loads(body)
    except ValueError:
        return ""
    if isinstance(decoded, dict) and isinstance(decoded.get("error"), dict):
        return str(decoded["error"].get("message", ""))
    return ""


def _answer_of(response: httpx.Response, request_id: int) -> dict[str, Any]:
    """The JSON-RPC answer to ``request_id`` in a JSON body or an SSE stream."""
    content_type = response.headers.get("content-type", "")
    messages: list[Any] = []
    if content_type.startswith("text/event-stream"):
        for event in response.text.replace("\r\n", "\n").split("\n\n"):
            data = "\n".join(line[5:].lstrip() for line in event.split("\n") if line.startswith("data:"))
            if data:
                try:
                    messages.append(json.loads(data))
                except ValueError:
                    continue
    else:
        decoded = response.json()
        messages = decoded if isinstance(decoded, list) else [decoded]
    for message in messages:
        if isinstance(message, dict) and message.get("id") == request_id:
            return message
    raise _Refused(response.status_code, "the edge's answer held no response to the request")


async def try_request(
    endpoint: str,
    token: str,
    method: str,
    params: dict[str, Any],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> TryOutcome:
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    latency: float | None = None

    headers = {"Authorization": f"Bearer {token}", "Accept": _ACCEPT, "Content-Type": "application/json"}
    async with httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False) as http:
        session_id: str | None = None
        try:
            initialize = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": CLIENT_INFO,
                },
            }
            opened = await http.post(endpoint, json=initialize, headers=headers)
            if opened.status_code != 200:
                raise _Refused(opened.status_code, _rpc_message(opened.content) or opened.reason_phrase)
            _answer_of(opened, 1)
            session_id = opened.headers.get("mcp-session-id")
            headers["MCP-Protocol-Version"] = PROTOCOL_VERSION
            if session_id:
                headers["Mcp-Session-Id"] = session_id
            await http.post(
                endpoint, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
            )
            call_started = time.perf_counter()
            answered = await http.post(
                endpoint,
                json={"jsonrpc": "2.0", "id": 2, "method": method, "params": params},
                headers=headers,
            )
            started = call_started  # the latency shown is the request's own, not the session's set-up
            if answered.status_code != 200:
                raise _Refused(answered.status_code, _rpc_message(answered.content) or answered.reason_phrase)
            if len(answered.content) > MAX_ANSWER_BYTES:
                raise _Refused(answered.status_code, "the answer is larger than this panel shows (4 MB)")
            latency = elapsed()
            message = _answer_of(answered, 2)
        except _Refused as refused:
            return TryOutcome(elapsed(), problem=str(refused), http_status=refused.status)
        except httpx.HTTPError as exc:
            return TryOutcome(elapsed(), problem=f"the edge could not be reached ({type(exc).__name__})")
        except ValueError:
            return TryOutcome(elapsed(), problem="the edge's answer was not JSON")
        finally:
            if session_id:
                with contextlib.suppress(httpx.HTTPError):  # else the session expires on its own
                    await http.delete(endpoint, headers=headers)
    result, error = message.get("result"), message.get("error")
    return TryOutcome(
        latency if latency is not None else elapsed(),
        result=result if isinstance(result, dict) else None,
        error=error if isinstance(error, dict) else None,
        http_status=200,
    )
