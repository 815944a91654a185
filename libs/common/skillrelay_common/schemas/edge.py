"""Messages between edge replicas (the worker protocol itself is ``skillrelay_worker.protocol``)."""

from __future__ import annotations

from typing import Any

from skillrelay_common.schemas.base import Message


class ClientResponseRelayed(Message, kw_only=True):
    """A JSON-RPC response from the MCP client to a server-to-client request, handed by the edge replica
    that received the POST to the replica that holds the call and waits for it."""

    session_id: str
    request_id: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
