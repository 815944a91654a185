"""``watch_changes``: follow an upstream MCP server's change notifications (``tools``, ``prompts`` or
``resources`` ``list_changed``) and call ``on_change`` for each, so the source's catalog is read again;
with ``on_updated``, also ``notifications/resources/updated`` of the upstream's resources (when it
offers resource subscriptions), so clients subscribed to one hear it.

2026-07-28 upstream: a ``subscriptions/listen`` request asking for the three list flags and, when the
upstream's ``resources`` capability has ``subscribe``, for its resources' URIs (read from
``resources/list`` each time the stream opens, at most ``MAX_WATCHED_RESOURCES``); its SSE answer
carries the notifications. 2025 session: ``resources/subscribe`` for each of those URIs, then the
session's GET stream. A stream that ends or breaks is opened again after a pause that grows (1 s
doubling to 60 s); an upstream that offers neither (HTTP 405 for the GET stream, -32601 for listen) is
watched no more. Runs until cancelled.
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
RESOURCE_UPDATED = "notifications/resources/updated"
LISTEN_FLAGS = {"toolsListChanged": True, "promptsListChanged": True, "resourcesListChanged": True}
# Resource URIs one watcher subscribes to at the upstream (the first of its listing).
MAX_WATCHED_RESOURCES = 256
FIRST_PAUSE = 1.0
LONGEST_PAUSE = 60.0
_log = structlog.get_logger("skillrelay.upstream.watch")
_decoder = msgspec.json.Decoder()


class _NotOffered(Exception):
    """The upstream has no change stream to follow."""


Notice = Callable[[str], Awaitable[None]]


async def watch_changes(
    connection: UpstreamConnection, on_change: Notice, on_updated: Notice | None = None
) -> None:
    """Call ``on_change(method)`` for every ``list_changed`` the upstream sends, and ``on_updated(uri)``
    for every ``resources/updated`` of a resource it lists, until cancelled."""
    pause = FIRST_PAUSE
    while True:
        try:
            await connection.connect()
            if await _follow(connection, on_change, on_updated):
                pause = FIRST_PAUSE  # the stream was up: start over with a short pause
        except _NotOffered:
            _log.info("upstream.watch.not_offered", source=connection.source.id)
            return
        except UpstreamError as exc:
            _log.info("upstream.watch.failed", source=connection.source.id, reason=exc.message)
        await asyncio.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE)


async def _follow(connection: UpstreamConnection, on_change: Notice, on_updated: Notice | None) -> bool:
    """One stream, read to its end; whether it opened."""
    uris = await _resource_uris(connection) if on_updated is not None else []
    if connection.era == "session":
        for uri in uris:  # a session's subscriptions: its GET stream then carries the updates
            with contextlib.suppress(UpstreamError):
                await connection.request("resources/subscribe", {"uri": uri})
        method, body = "GET", None
        headers = connection.headers_for("", {})
        headers["Accept"] = "text/event-stream"
        headers.pop("Content-Type", None)
    else:
        wanted: dict[str, Any] = {**LISTEN_FLAGS, "resourceSubscriptions": uris} if uris else LISTEN_FLAGS
        params: dict[str, Any] = {"notifications": wanted}
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
                        if not isinstance(message, dict):
                            continue
                        if message.get("method") in LIST_CHANGED:
                            await on_change(str(message["method"]))
                        elif message.get("method") == RESOURCE_UPDATED and on_updated is not None:
                            changed = (message.get("params") or {}).get("uri")
                            if isinstance(changed, str) and changed in uris:
                                await on_updated(changed)
            return True
    except (httpx.TransportError, EventTooLarge) as exc:
        raise UpstreamError(
            f"the change stream of upstream {connection.label} broke: {type(exc).__name__}"
        ) from None
    except UpstreamRpcError:
        raise _NotOffered from None


async def _resource_uris(connection: UpstreamConnection) -> list[str]:
    """The URIs of the upstream's resources to subscribe to: none unless it offers subscriptions."""
    resources = connection.server_capabilities.get("resources")
    if not isinstance(resources, dict) or resources.get("subscribe") is not True:
        return []
    uris: list[str] = []
    cursor: str | None = None
    with contextlib.suppress(UpstreamError):
        while len(uris) < MAX_WATCHED_RESOURCES:
            result = await connection.request("resources/list", {"cursor": cursor} if cursor else {})
            items = result.get("resources")
            for item in items if isinstance(items, list) else []:
                uri = item.get("uri") if isinstance(item, dict) else None
                if isinstance(uri, str) and uri not in uris:
                    uris.append(uri)
            cursor = result.get("nextCursor") if isinstance(result.get("nextCursor"), str) else None
            if cursor is None:
                break
    return uris[:MAX_WATCHED_RESOURCES]
