"""Asking the MCP client something during a call (sampling, elicitation, roots) and awaiting its answer,
whichever edge replica the client sends it to (the ``ClientResponseRelay`` routes it back here)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from skillrelay_edge.calls.context import (
    REQUEST_TIMEOUT,
    CallContext,
    ClientRequestError,
    ClientResponseRelay,
)
from skillrelay_edge.transport import jsonrpc

# Writes the JSON-RPC request where the client reads the call's messages (live stream or stored one).
SendRequest = Callable[[dict[str, Any]], Awaitable[None]]


async def ask_client(
    relay: ClientResponseRelay,
    session_id: str,
    ctx: CallContext | None,
    method: str,
    params: dict[str, Any],
    timeout: float,
    send: SendRequest,
) -> dict[str, Any]:
    """The client's result; raises ``ClientRequestError`` on its error answer, a timeout or the call's
    cancellation."""
    request_id = relay.new_request_id()
    # The waiter exists before the request is written, so an instant answer is not missed.
    waiter = asyncio.ensure_future(relay.expect(session_id, request_id))
    await send(jsonrpc.request(request_id, method, params))
    cancelled = asyncio.ensure_future(ctx.cancelled.wait()) if ctx is not None else None
    waiting: set[asyncio.Future[Any]] = {waiter} if cancelled is None else {waiter, cancelled}
    try:
        await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if cancelled is not None:
            cancelled.cancel()
    if not waiter.done():
        relay.forget(session_id, request_id)
        waiter.cancel()
        if ctx is not None and ctx.cancelled.is_set():
            raise ClientRequestError(REQUEST_TIMEOUT, "the request was cancelled")
        raise ClientRequestError(REQUEST_TIMEOUT, f"the client did not answer {method} in {timeout:g} s")
    message = waiter.result()
    error = message.get("error")
    if isinstance(error, dict):
        raise ClientRequestError(
            int(error.get("code", -32603)), str(error.get("message", "")), error.get("data")
        )
    result = message.get("result")
    return result if isinstance(result, dict) else {}
