"""``watch_changes``: follow an upstream MCP server's change notifications (``tools``, ``prompts`` or
``resources`` ``list_changed``) and call ``on_change`` for each, so the source's catalog is read again.

2026-07-28 upstream: a ``subscriptions/listen`` request asking for the three list flags, whose SSE
answer carries the notifications. 2025 session: the session's GET stream. A stream that ends or breaks
is opened again after a pause that grows (1 s doubling to 60 s); an upstream that offers neither (HTTP
405 for the GET stream, -32601 for listen) is watched no more. Runs until cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec
import structlog

from skillrelay_common.upstream.client import (
    METHOD_NOT_FOUND,
    UpstreamConnection,
    UpstreamError,
    UpstreamRpcError,
)
from skillrelay_common.upstream.sse import EventTooLarge, SseReader

LIST_CHANGED = frozenset(
    {
        "notifications/tools/list_changed",
        "notifications/prompts/list_changed",
        "notifications/resources/list_changed",
    }
)
LISTEN_FLAGS = {"toolsListChanged": True, "promptsListChanged": True, "resourcesListChanged": True}
FIRST_PAUSE = 1.0
LONGEST_PAUSE = 60.0
_log = structlog.get_logger("skillrelay.upstream.watch")
_decoder = msgspec.json.Decoder()


class _NotOffered(Exception):
    """The upstream has no change stream to follow."""


async def watch_changes(connection: UpstreamConnection, on_change: Callable[[str], Awaitable[None]]) -> None:
    """Call ``on_change(method)`` for every ``list_changed`` the upstream sends, until cancelled."""
    pause = FIRST_PAUSE
    while True:
        try:
            await connection.connect()
            if await _follow(connection, on_change):
                pause = FIRST_PAUSE  # the stream was up: start over with a short pause
        except _NotOffered:
            _log.info("upstream.watch.not_offered", source=connection.source.id)
            return
        except UpstreamError as exc:
            _log.info("upstream.watch.failed", source=connection.source.id, reason=exc.message)
        await asyncio.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE)


async def _follow(connection: UpstreamConnection, on_change: Callable[[str], Awaitable[None]]) -> bool:
    """One stream, read to its end; whether it opened."""
    if connection.era == "session":
        method, body = "GET", None
        headers = connection.headers_for("", {})
        headers["Accept"] = "text/event-stream"
        headers.pop("Content-Type", None)
    else:
        params: dict[str, Any] = {"notifications": LISTEN_FLAGS}
        body = connection.request_body(0, "subscriptions/listen", params, {}, None)
        method = "POST"
        headers = connection.headers_for("subscriptions/listen", params)
    url, headers = await connection.pinned(headers)
    content = None if body is None else msgspec.json.encode(body)
    try:
        async with connection.http.stream(method, url, content=content, headers=headers) as response:
            if response.status_code in {404, 405} or (
                response.status_code >= 400 and "json" not in response.headers.get("content-type", "")
            ):
                if response.status_code == 405 or method == "POST":
                    raise _NotOffered
                return False
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                raw = await response.aread()
                with contextlib.suppress(msgspec.DecodeError):
                    answer = _decoder.decode(raw)
                    error = answer.get("error") if isinstance(answer, dict) else None
                    if isinstance(error, dict) and error.get("code") == METHOD_NOT_FOUND:
                        raise _NotOffered
                return False
            reader = SseReader()
            async for chunk in response.aiter_bytes():
                for data in reader.feed(chunk):
                    with contextlib.suppress(msgspec.DecodeError):
                        message = _decoder.decode(data)
                        if isinstance(message, dict) and message.get("method") in LIST_CHANGED:
                            await on_change(str(message["method"]))
            return True
    except (httpx.TransportError, EventTooLarge) as exc:
        raise UpstreamError(
            f"the change stream of upstream {connection.label} broke: {type(exc).__name__}"
        ) from None
    except UpstreamRpcError:
        raise _NotOffered from None
