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


class ParkedAnswer(Message, kw_only=True):
    """A 2026 client's retry of a call parked on another edge replica (a 2025-session upstream's open
    request waiting for the client's answer): the answers, handed to the replica holding the call."""

    park_id: str
    integration_id: str
    principal: str
    responses: dict[str, dict[str, Any]] = {}


class ParkedStep(Message, kw_only=True):
    """What a parked call did next, the holding replica's reply to ``ParkedAnswer``. ``outcome``:
    ``result`` (the upstream's result), ``input`` (its next questions, ``requests`` by key),
    ``rpc_error`` (the upstream's JSON-RPC error: ``code``, ``message``, ``data``), ``upstream_error``
    (the upstream failed or timed out: ``message``) or ``gone`` (no such call waits here any more)."""

    outcome: str
    result: dict[str, Any] | None = None
    requests: dict[str, dict[str, Any]] | None = None
    message: str = ""
    code: int = 0
    data: Any = None
