"""The MCP endpoint's use cases (POST, GET, DELETE), free of any web framework: the HTTP layer hands
in header values and a body reader and gets back an ``HttpAnswer``.

Order of checks for every request: transport rules (Host/Origin, Accept, Content-Type, version
header, size) → integration (404) → credentials (401/503) → body framing → era → session (404 / renew).
Credentials come before anything session-related so a session id never acts as a credential.

Two eras answer on the same endpoint, chosen per request (``docs/mcp-2026.md``): a request naming
2026-07-28 (its ``MCP-Protocol-Version`` header, or its ``_meta``) is served statelessly by
``modern``: no session is looked up, opened or echoed. Everything else is the 2025 session era.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from skillrelay_common.schemas.base import NotFound, Unavailable
from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_common.schemas.sessions import SessionInfo
from skillrelay_edge.calls.adoption import CallAdoption
from skillrelay_edge.calls.call_records import CallRecord
from skillrelay_edge.calls.cancellation import InFlightCalls
from skillrelay_edge.calls.context import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    AnswerSink,
    CallContext,
    ClientResponseRelay,
    PrincipalLike,
)
from skillrelay_edge.calls.sse import GET_STREAM_ID, EventStore, parse_event_id
from skillrelay_edge.calls.stored_call import StoredCall
from skillrelay_edge.calls.streaming import CallStream
from skillrelay_edge.integrations.catalog import Catalog
from skillrelay_edge.modern.dispatch import ModernDispatcher
from skillrelay_edge.modern.headers import check_param_headers, check_standard_headers
from skillrelay_edge.modern.listen import Listener, ListenStreams, read_filter
from skillrelay_edge.modern.meta import (
    MODERN_VERSIONS,
    ModernError,
    check_version,
    names_modern_version,
    read_meta,
)
from skillrelay_edge.protocol.dispatcher import Dispatcher
from skillrelay_edge.protocol.lifecycle import client_state_problem, session_state_from_initialize
from skillrelay_edge.protocol.resources import SUBSCRIPTIONS_KEY
from skillrelay_edge.protocol.scope import RequestScope, handler_kind
from skillrelay_edge.sessions.notifications import OpenStream, SessionStreams
from skillrelay_edge.transport import jsonrpc
from skillrelay_edge.transport.jsonrpc import FramingError, Incoming, RpcError
from skillrelay_edge.transport.rules import (
    DEFAULT_HEADER_VERSION,
    SUPPORTED_VERSIONS,
    HttpRules,
    Rejection,
    negotiate_version,
)

_log = structlog.get_logger("skillrelay.edge.endpoint")
SESSION_HEADER = "Mcp-Session-Id"
JSON = "application/json"
EVENT_STREAM = "text/event-stream"
BATCH_VERSION = "2025-03-26"
BATCH_CONCURRENCY = 8
# Priming events (SEP-1699) exist since 2025-11-25; older clients would try to parse the empty data.
PRIMING_SINCE = "2025-11-25"
PRIMING_RETRY_MS = 1000
_NO_CACHE = {"Cache-Control": "no-cache"}
# Client text copied into audit records (one audit message must stay far below NATS's limit).
MAX_AUDITED_TEXT = 200


class BodyTooLarge(Exception):
    pass


class Failure(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def reason(self) -> str: ...
    @property
    def www_authenticate(self) -> str | None: ...


class Verifier(Protocol):
    async def authenticate(
        self, integration: IntegrationInfo, authorization_header: str | None, query_token: str | None
    ) -> Any: ...


class Sessions(Protocol):
    async def open(
        self,
        integration_id: str,
        principal: str,
        *,
        protocol_version: str | None,
        state: dict[str, Any],
        max_sessions: int | None = None,
        ttl_seconds: float | None = None,
    ) -> SessionInfo: ...
    async def resolve(self, session_id: str, integration_id: str, principal: str) -> SessionInfo | None: ...
    def touch(self, session_id: str) -> None: ...
    async def update_state(
        self, session_id: str, state: dict[str, Any], protocol_version: str | None = None
    ) -> SessionInfo | None: ...
    async def close(self, session_id: str) -> bool: ...


class Audit(Protocol):
    def record(
        self,
        kind: str,
        integration_id: str,
        *,
        outcome: str,
        principal: str | None = None,
        latency_ms: float | None = None,
        data: dict[str, Any] | None = None,
    ) -> None: ...


class _NoAudit:
    def record(self, kind: str, integration_id: str, **fields: Any) -> None:
        return None


def _outcome(response: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Audit outcome of a JSON-RPC response: ok, is_error (a tool failed) or error (with its code)."""
    error = response.get("error")
    if isinstance(error, dict):
        return "error", {"code": error.get("code")}
    result = response.get("result")
    if isinstance(result, dict) and result.get("isError") is True:
        return "is_error", {}
    return "ok", {}


class Catalogs(Protocol):
    async def get(self, integration_id: str) -> Catalog | NotFound | Unavailable: ...


@dataclass
class HttpAnswer:
    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: AsyncIterator[bytes] | None = None
    media_type: str = JSON
    # Went out already through ``HttpInput.send_stream`` (a call's SSE answer): nothing left to send.
    sent: bool = False
    # For a listening stream: ends ``stream`` (its generator returns) once the client has gone, so the
    # HTTP layer needs no second task to cancel it with.
    stop: Callable[[], None] | None = None


@dataclass(frozen=True)
class HttpInput:
    integration_id: str
    headers: Mapping[str, str]  # lower-case names
    query_token: str | None = None
    read_body: Callable[[], Awaitable[bytes]] | None = None
    # Sends an SSE answer (status, headers, then its stream) while the request's task goes on running
    # the call; returns when the stream has ended or the client has gone. POST needs it.
    send_stream: Callable[[HttpAnswer], Awaitable[None]] | None = None


CORS_ALLOW_HEADERS = (
    "authorization, content-type, accept, mcp-session-id, mcp-protocol-version, last-event-id"
)
CORS_EXPOSE_HEADERS = "Mcp-Session-Id, WWW-Authenticate, Skillrelay-Correlation-Id"


def cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": CORS_EXPOSE_HEADERS,
        "Vary": "Origin",
    }


def _reject(rejection: Rejection) -> HttpAnswer:
    return HttpAnswer(rejection.status, jsonrpc.encode(rejection.body()), dict(rejection.headers))


def _rpc_error_answer(
    status: int, code: int, message: str, request_id: Any = None, data: Any = None
) -> HttpAnswer:
    return HttpAnswer(status, jsonrpc.encode(jsonrpc.error(request_id, code, message, data)))


# Every version this endpoint speaks, newest first (server/discover and UnsupportedProtocolVersion).
ALL_VERSIONS: tuple[str, ...] = (*MODERN_VERSIONS, *SUPPORTED_VERSIONS)
# HTTP statuses the stateless era gives JSON-RPC errors (others answer 200).
_MODERN_ERROR_STATUS = {METHOD_NOT_FOUND: 404, -32021: 400}


def _is_modern(header_version: str | None, messages: list[Incoming], batch: bool) -> bool:
    """Whether a POST is of the stateless era: it names a modern version in its header, or (with no
    session-era version in the header) in its body's ``_meta``."""
    if header_version in MODERN_VERSIONS:
        return True
    if header_version in SUPPORTED_VERSIONS or batch:
        return False
    return names_modern_version(messages[0].message.get("params"))


def _status_of(scope: RequestScope, response: dict[str, Any]) -> int:
    if not scope.modern:
        return 200
    error = response.get("error")
    if not isinstance(error, dict):
        return 200
    code = error.get("code")
    return _MODERN_ERROR_STATUS.get(code, 200) if isinstance(code, int) else 200


class _StreamedAnswer:
    """``StreamOwner`` of one POST whose call may stream: sends its SSE answer and records the call for
    adoption. Holds values, not the scope or the stream (the stream holds this: no reference cycle)."""

    __slots__ = ("_call_task", "_endpoint", "_headers", "_modern", "_req", "_send", "_session_id", "_version")

    def __init__(
        self,
        endpoint: McpEndpoint,
        call_task: asyncio.Task[Any],
        req: Incoming,
        scope: RequestScope,
        send_stream: Callable[[HttpAnswer], Awaitable[None]],
        headers: dict[str, str],
    ) -> None:
        self._endpoint = endpoint
        self._call_task = call_task
        self._req = req
        self._session_id = scope.session_id
        self._version = scope.protocol_version
        self._modern = scope.modern
        self._send = send_stream
        self._headers = headers

    async def record(self, stream_id: str, call_id: str | None) -> None:
        """Records a call whose answer became a stream, so another replica can adopt it."""
        adoption, req = self._endpoint.adoption, self._req
        if adoption is None or self._session_id is None:
            return
        await adoption.record(
            self._session_id,
            stream_id,
            call_id=call_id,
            method=req.method,
            params=req.params,
            request_id=req.id,
            protocol_version=self._version,
        )

    async def send(self, frames: AsyncIterator[bytes], ctx: CallContext | None) -> None:
        try:
            await self._send(HttpAnswer(200, None, {**self._headers, **_NO_CACHE}, frames, EVENT_STREAM))
        finally:
            self._endpoint.answer_closed(self._call_task, ctx, self._modern)


class McpEndpoint:
    def __init__(
        self,
        *,
        rules: HttpRules,
        catalogs: Catalogs,
        verifier: Verifier,
        sessions: Sessions,
        dispatcher: Dispatcher,
        relay: ClientResponseRelay,
        store: EventStore | None,
        streams: SessionStreams | None,
        inflight: InFlightCalls,
        audit: Audit | None = None,
        adoption: CallAdoption | None = None,
        modern: ModernDispatcher | None = None,
        listens: ListenStreams | None = None,
    ) -> None:
        self.adoption = adoption
        self.modern = modern
        self.listens = listens
        self.audit: Audit = audit or _NoAudit()
        self.rules = rules
        self.catalogs = catalogs
        self.verifier = verifier
        self.sessions = sessions
        self.dispatcher = dispatcher
        self.relay = relay
        self.store = store
        self.streams = streams
        self.inflight = inflight
        # The tasks running calls whose answers may stream (see ``leave``).
        self._streamed_calls: dict[asyncio.Task[Any], CallStream] = {}
        self._leaving = False

    # -- shared steps ----------------------------------------------------------------------------

    async def _admit(self, inp: HttpInput) -> tuple[Catalog, PrincipalLike] | HttpAnswer:
        catalog = await self.catalogs.get(inp.integration_id)
        if isinstance(catalog, NotFound):
            return _rpc_error_answer(404, -32000, "Not Found: no such MCP server integration")
        if isinstance(catalog, Unavailable):
            return _rpc_error_answer(503, -32000, "Service Unavailable: try again shortly")
        outcome = await self.verifier.authenticate(
            catalog.integration, inp.headers.get("authorization"), inp.query_token
        )
        if hasattr(outcome, "www_authenticate") and hasattr(outcome, "status"):
            self.audit.record(
                "auth.failure",
                catalog.integration.id,
                outcome=str(outcome.status),
                data={"reason": outcome.reason},
            )
            headers = {"WWW-Authenticate": outcome.www_authenticate} if outcome.www_authenticate else {}
            # The reason names what is missing or wrong (never the token), so a client can tell the user.
            message = (
                f"Unauthorized: {outcome.reason}"
                if outcome.status == 401
                else "Service Unavailable: try again shortly"
            )
            return HttpAnswer(outcome.status, jsonrpc.encode(jsonrpc.error(None, -32000, message)), headers)
        return catalog, outcome

    async def _open(
        self, catalog: Catalog, principal: PrincipalLike, version: str, state: dict[str, Any]
    ) -> SessionInfo:
        return await self.sessions.open(
            catalog.integration.id,
            principal.id,
            protocol_version=version,
            state=state,
            max_sessions=catalog.integration.max_sessions,
            ttl_seconds=catalog.integration.session_ttl_seconds,
        )

    async def _existing_session(
        self, catalog: Catalog, principal: PrincipalLike, session_id: str
    ) -> SessionInfo | None:
        session = await self.sessions.resolve(session_id, catalog.integration.id, principal.id)
        if session is not None:
            self.sessions.touch(session.session_id)
        return session

    # -- POST ------------------------------------------------------------------------------------

    async def post(self, inp: HttpInput) -> HttpAnswer:
        h = inp.headers
        rejection = self.rules.check_host_and_origin(
            h.get("host"), h.get("origin")
        ) or self.rules.check_post_headers(h.get("content-type"), h.get("accept"), h.get("content-length"))
        if rejection is not None:
            return _reject(rejection)
        admitted = await self._admit(inp)
        if isinstance(admitted, HttpAnswer):
            return admitted
        catalog, principal = admitted
        assert inp.read_body is not None
        try:
            body = await inp.read_body()
        except BodyTooLarge:
            return _reject(Rejection(413, f"Payload Too Large: at most {self.rules.max_body_bytes} bytes"))
        try:
            messages, batch = jsonrpc.decode_body(body)
        except FramingError as exc:
            return _rpc_error_answer(400, exc.code, exc.message, exc.request_id)
        header_version = h.get("mcp-protocol-version")
        if self.modern is not None and _is_modern(header_version, messages, batch):
            return await self._post_modern(inp, catalog, principal, messages[0])
        rejection = self.rules.check_protocol_version(header_version)
        if rejection is not None:
            return _reject(rejection)
        if batch and (header_version or BATCH_VERSION) != BATCH_VERSION:
            return _rpc_error_answer(
                400, INVALID_REQUEST, "Invalid Request: batches are only allowed in 2025-03-26"
            )
        first = messages[0]
        if not batch and first.kind == "request" and first.method == "server/discover":
            # Without the stateless era's _meta this is no 2026 request: the session era has no such
            # method (a JSON-RPC error with HTTP 400, as a 2025-only server answers a probe).
            return _rpc_error_answer(
                400, METHOD_NOT_FOUND, "Method not found: server/discover; use initialize", first.id
            )
        initialize = next((m for m in messages if m.kind == "request" and m.method == "initialize"), None)
        if initialize is not None and batch:
            return _rpc_error_answer(400, INVALID_REQUEST, "Invalid Request: initialize must not be batched")
        has_request = any(m.kind == "request" for m in messages)

        try:
            opened = await self._post_session(catalog, principal, initialize, h, has_request)
        except Exception as exc:
            _log.warning("mcp.sessions.unavailable", error=type(exc).__name__)
            return _rpc_error_answer(503, -32000, "Service Unavailable: sessions cannot be reached")
        if isinstance(opened, HttpAnswer):
            return opened
        session, new_session = opened
        if batch and session is not None and session.protocol_version != BATCH_VERSION:
            # Batches exist in 2025-03-26 only: a session negotiated later never takes one, whatever
            # the request's header says.
            return _rpc_error_answer(
                400, INVALID_REQUEST, "Invalid Request: batches are only allowed in 2025-03-26 sessions"
            )
        header_version = h.get("mcp-protocol-version")
        headers = {SESSION_HEADER: session.session_id} if new_session and session is not None else {}
        version = header_version or (session.protocol_version if session else None) or DEFAULT_HEADER_VERSION

        for message in messages:
            if message.kind == "response" and session is not None:
                await self.relay.deliver_client_response(session.session_id, message.message)
            elif (
                message.kind == "notification"
                and message.method == "notifications/cancelled"
                and session is not None
            ):
                await self.inflight.cancel(session.session_id, message.params.get("requestId"))
        requests = [m for m in messages if m.kind == "request"]
        if not requests:
            return HttpAnswer(202, None, headers)
        if not batch:
            assert inp.send_stream is not None
            return await self._answer(
                catalog, principal, session, version, requests[0], inp.send_stream, headers
            )
        # JSON-RPC lets a server answer a batch's requests concurrently; a few at a time, so one POST
        # cannot start an unbounded number of calls. Answers keep the requests' order.
        limit = asyncio.Semaphore(BATCH_CONCURRENCY)

        async def answer_one(request: Incoming) -> dict[str, Any]:
            async with limit:
                return await self._answer_plain(catalog, principal, session, version, request)

        answers = await asyncio.gather(*(answer_one(request) for request in requests))
        return HttpAnswer(200, jsonrpc.encode(answers), headers)

    async def _post_session(
        self,
        catalog: Catalog,
        principal: PrincipalLike,
        initialize: Incoming | None,
        h: Mapping[str, str],
        has_request: bool,
    ) -> tuple[SessionInfo | None, bool] | HttpAnswer:
        """The session a POST runs in and whether it was opened now (its id goes in the answer)."""
        header_version = h.get("mcp-protocol-version")
        session_id = h.get("mcp-session-id")
        if initialize is not None:
            params = initialize.params
            version = negotiate_version(params.get("protocolVersion"))
            state = session_state_from_initialize(params)
            problem = client_state_problem(state)
            if problem is not None:
                return _rpc_error_answer(400, INVALID_PARAMS, f"Invalid params: {problem}", initialize.id)
            return await self._open(catalog, principal, version, state), True
        if session_id:
            session = await self._existing_session(catalog, principal, session_id)
            if session is not None:
                return session, False
            if catalog.integration.session_mode != "renew":
                return _rpc_error_answer(404, -32001, "Session not found")
            return await self._open(catalog, principal, header_version or DEFAULT_HEADER_VERSION, {}), True
        if has_request:
            return await self._open(catalog, principal, header_version or DEFAULT_HEADER_VERSION, {}), True
        return None, False

    async def _post_modern(
        self, inp: HttpInput, catalog: Catalog, principal: PrincipalLike, message: Incoming
    ) -> HttpAnswer:
        """A stateless-era POST: one request (or notification) whose ``_meta`` says who asks and how.
        No session is read or written; an ``Mcp-Session-Id`` it carries is ignored, as the spec says."""
        h = inp.headers
        if message.kind == "notification":
            return HttpAnswer(202, None)
        if message.kind == "response":
            return _rpc_error_answer(
                400, INVALID_REQUEST, "Invalid Request: a 2026-07-28 client sends no responses", message.id
            )
        method, params = message.method, message.params
        try:
            meta = read_meta(message.message.get("params"))
            check_version(h.get("mcp-protocol-version"), meta, ALL_VERSIONS)
            check_standard_headers(h, method, params)
            if method == "tools/call":
                tool = catalog.tools.get(str(params.get("name")))
                if tool is not None:
                    check_param_headers(h, tool.input_schema, params.get("arguments"))
        except ModernError as exc:
            return _rpc_error_answer(exc.status, exc.code, exc.message, message.id, exc.data)
        # An unknown method is answered by the dispatcher: -32601, HTTP 404 (``_status_of``).
        client_state: dict[str, Any] = {
            "clientCapabilities": meta.client_capabilities,
            "clientInfo": meta.client_info or {},
        }
        if meta.log_level is not None:
            client_state["logLevel"] = meta.log_level
        scope = RequestScope(
            catalog,
            principal,
            None,
            meta.protocol_version,
            request_id=message.id,
            modern=True,
            client_state=client_state,
        )
        if method == "subscriptions/listen":
            return self._listen(scope, message)
        assert inp.send_stream is not None
        return await self._answer(
            catalog, principal, None, meta.protocol_version, message, inp.send_stream, {}, scope
        )

    def _listen(self, scope: RequestScope, req: Incoming) -> HttpAnswer:
        if self.listens is None or req.id is None:
            return _rpc_error_answer(404, METHOD_NOT_FOUND, "Method not found: subscriptions/listen", req.id)
        try:
            wanted = read_filter(req.params)
        except RpcError as exc:
            return _rpc_error_answer(400, exc.code, exc.message, req.id)
        listener = Listener(scope.catalog.integration.id, scope.catalog.snapshot.skillset.id, req.id, wanted)
        self.audit.record(
            "mcp.request",
            scope.catalog.integration.id,
            outcome="ok",
            principal=scope.principal.id,
            data={"method": req.method},
        )
        return HttpAnswer(
            200, None, dict(_NO_CACHE), self.listens.follow(listener), EVENT_STREAM, stop=listener.end
        )

    def _scope(
        self,
        catalog: Catalog,
        principal: PrincipalLike,
        session: SessionInfo | None,
        version: str,
        req: Incoming,
    ) -> RequestScope:
        return RequestScope(catalog, principal, session, version, request_id=req.id)

    async def _answer_plain(
        self,
        catalog: Catalog,
        principal: PrincipalLike,
        session: SessionInfo | None,
        version: str,
        req: Incoming,
    ) -> dict[str, Any]:
        return await self._dispatch(self._scope(catalog, principal, session, version, req), req)

    async def _dispatch(
        self, scope: RequestScope, req: Incoming, sink: AnswerSink | None = None
    ) -> dict[str, Any]:
        """Answer one request and audit it (``tool.call`` for tools/call, else ``mcp.request``)."""
        started = time.perf_counter()
        if scope.modern and self.modern is not None:
            response = await self.modern.answer(scope, req.method, req.params)
        else:
            response = await self.dispatcher.answer(scope, req.method, req.params)
        outcome, data = ("cancelled", {}) if sink is not None and sink.cancelled else _outcome(response)
        data["method"] = req.method[:MAX_AUDITED_TEXT]  # a client's text, bounded like the tool name
        kind = "mcp.request"
        if req.method == "tools/call":
            kind = "tool.call"
            data["tool"] = str(req.params.get("name", ""))[:MAX_AUDITED_TEXT]
        source_id = scope.catalog.source_of_request(req.method, req.params)
        if source_id is not None:
            data["source"] = source_id  # a call forwarded to a skillset source's upstream
        self.audit.record(
            kind,
            scope.catalog.integration.id,
            outcome=outcome,
            principal=scope.principal.id,
            latency_ms=(time.perf_counter() - started) * 1000,
            data=data,
        )
        return response

    async def _answer(
        self,
        catalog: Catalog,
        principal: PrincipalLike,
        session: SessionInfo | None,
        version: str,
        req: Incoming,
        send_stream: Callable[[HttpAnswer], Awaitable[None]],
        headers: dict[str, str],
        scope: RequestScope | None = None,
    ) -> HttpAnswer:
        """Run the call in this task. Should it send anything before its result, its answer becomes an
        SSE stream sent from another task meanwhile (``CallStream``); else the result is plain JSON."""
        if scope is None:
            scope = self._scope(catalog, principal, session, version, req)
        if not _may_stream(catalog, req) or (scope.modern and not _modern_may_notify(scope, req)):
            response = await self._dispatch(scope, req)
            return HttpAnswer(_status_of(scope, response), jsonrpc.encode(response), headers)
        negotiated = session.protocol_version if session is not None else None
        call_task = asyncio.current_task()
        assert call_task is not None
        stream = CallStream(
            session_id=scope.session_id,
            relay=self.relay,
            store=self.store,
            owner=_StreamedAnswer(self, call_task, req, scope, send_stream, headers),
            inflight=self.inflight,
            priming_retry_ms=PRIMING_RETRY_MS if (negotiated or version) >= PRIMING_SINCE else None,
            event_ids=not scope.modern,  # 2026-07-28 streams are not resumable: no event ids
        )
        scope.sink = stream
        self._streamed_calls[call_task] = stream
        response = jsonrpc.error(req.id, INTERNAL_ERROR, "Internal error")
        try:
            response = await self._dispatch(scope, req, stream)
        except asyncio.CancelledError:
            # The server is stopping (see ``leave``; uvicorn also cancels what is left when its grace
            # period ends): no last event, the call is left to another replica.
            stream.abandon()
            raise
        except Exception:
            _log.exception("mcp.call.failed", method=req.method)
        finally:
            self._streamed_calls.pop(call_task, None)
            stream.release()
        # The answer always ends (never a hang): with the response, or, when the client cancelled the
        # request, without one (MCP: a cancelled request gets no response).
        if stream.streaming:
            await stream.finish(response)
            return HttpAnswer(200, sent=True)
        if stream.cancelled:
            # Cancelled before it sent anything: an event stream that ends at once, with no response.
            return HttpAnswer(200, b"", {**headers, **_NO_CACHE}, media_type=EVENT_STREAM)
        return HttpAnswer(_status_of(scope, response), jsonrpc.encode(response), headers)

    def answer_closed(self, call_task: asyncio.Task[Any], ctx: CallContext | None, modern: bool) -> None:
        """A call's SSE answer is over: sent, or its client went away. Should the call still run, a
        2026-07-28 one is cancelled (closing the response stream cancels the request), and one whose
        client went away while the server is stopping is let go."""
        if call_task not in self._streamed_calls:
            return
        if modern and ctx is not None:
            ctx.cancel()
        elif self._leaving:
            call_task.cancel()

    def leave(self) -> None:
        """The server is stopping. A call whose answer streamed to a client that has gone (now or
        later) no longer holds up the shutdown: it is left running in its worker, for the replica where
        its client resumes to adopt. Calls answering a connected client go on to their end."""
        self._leaving = True
        for task, stream in list(self._streamed_calls.items()):
            if stream.answer_ended:
                task.cancel()

    async def _rerun(
        self,
        catalog: Catalog,
        principal: PrincipalLike,
        session: SessionInfo,
        record: CallRecord,
        call: StoredCall,
    ) -> dict[str, Any]:
        """A recorded request dispatched again, adopting the call another replica held."""
        version, request_id = record.protocol_version, record.request_id
        scope = RequestScope(catalog, principal, session, version, request_id=request_id)
        scope.sink = call
        message = {"jsonrpc": "2.0", "id": request_id, "method": record.method, "params": record.params}
        return await self._dispatch(scope, Incoming("request", message), call)

    # -- GET -------------------------------------------------------------------------------------

    async def _admit_session_request(
        self, inp: HttpInput, *, stream: bool
    ) -> tuple[Catalog, PrincipalLike, str] | HttpAnswer:
        """The checks GET (``stream``) and DELETE share, in order: 2025 era only, transport rules (a GET
        must accept an event stream), integration and credentials, then the session id they act on."""
        h = inp.headers
        if h.get("mcp-protocol-version") in MODERN_VERSIONS:
            return _no_get_or_delete()
        rejection = (
            self.rules.check_host_and_origin(h.get("host"), h.get("origin"))
            or (self.rules.check_get_headers(h.get("accept")) if stream else None)
            or self.rules.check_protocol_version(h.get("mcp-protocol-version"))
        )
        if rejection is not None:
            return _reject(rejection)
        admitted = await self._admit(inp)
        if isinstance(admitted, HttpAnswer):
            return admitted
        session_id = h.get("mcp-session-id")
        if not session_id:
            return _rpc_error_answer(400, -32000, "Bad Request: Mcp-Session-Id header is required")
        return admitted[0], admitted[1], session_id

    async def get(self, inp: HttpInput) -> HttpAnswer:
        admitted = await self._admit_session_request(inp, stream=True)
        if isinstance(admitted, HttpAnswer):
            return admitted
        catalog, principal, session_id = admitted
        h = inp.headers
        headers: dict[str, str] = dict(_NO_CACHE)
        try:
            session = await self._existing_session(catalog, principal, session_id)
            if session is None:
                if catalog.integration.session_mode != "renew":
                    return _rpc_error_answer(404, -32001, "Session not found")
                version = h.get("mcp-protocol-version") or DEFAULT_HEADER_VERSION
                session = await self._open(catalog, principal, version, {})
                headers[SESSION_HEADER] = session.session_id
        except Exception as exc:
            _log.warning("mcp.sessions.unavailable", error=type(exc).__name__)
            return _rpc_error_answer(503, -32000, "Service Unavailable: sessions cannot be reached")
        if self.streams is None:
            return _rpc_error_answer(405, -32000, "Method Not Allowed: no GET stream on this edge")
        stream_id, after = GET_STREAM_ID, None
        last_event_id = h.get("last-event-id")
        if last_event_id and SESSION_HEADER not in headers:
            parsed = parse_event_id(last_event_id)
            if parsed is not None:
                stream_id, after = parsed
        subscriptions = session.state.get(SUBSCRIPTIONS_KEY)
        open_stream = OpenStream(
            session.session_id,
            catalog.integration.id,
            catalog.snapshot.skillset.id,
            principal.id,
            subscriptions if isinstance(subscriptions, list) else (),
            stream_id,
        )
        try:
            frames = await self.streams.follow(open_stream, after)
        except Exception as exc:
            _log.warning("mcp.events.unavailable", error=type(exc).__name__)
            return _rpc_error_answer(503, -32000, "Service Unavailable: the event store cannot be reached")
        if stream_id != GET_STREAM_ID and self.adoption is not None:
            # A request stream: should the replica holding its call be dead, adopt the call.
            rerun = functools.partial(self._rerun, catalog, principal, session)
            frames = self.adoption.watch(frames, session.session_id, stream_id, rerun)
            return HttpAnswer(200, None, headers, frames, EVENT_STREAM)
        return HttpAnswer(200, None, headers, frames, EVENT_STREAM, stop=open_stream.end)

    # -- OPTIONS (CORS preflight of browser clients) --------------------------------------------

    def preflight(self, inp: HttpInput) -> HttpAnswer:
        h = inp.headers
        rejection = self.rules.check_host_and_origin(h.get("host"), h.get("origin"))
        if rejection is not None:
            return _reject(rejection)
        return HttpAnswer(
            204,
            None,
            {
                "Access-Control-Allow-Methods": "GET, POST, DELETE",
                "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                "Access-Control-Max-Age": "600",
            },
        )

    # -- DELETE ----------------------------------------------------------------------------------

    async def delete(self, inp: HttpInput) -> HttpAnswer:
        admitted = await self._admit_session_request(inp, stream=False)
        if isinstance(admitted, HttpAnswer):
            return admitted
        catalog, principal, session_id = admitted
        try:
            session = await self.sessions.resolve(session_id, catalog.integration.id, principal.id)
            if session is None:
                return _rpc_error_answer(404, -32001, "Session not found")
            await self.sessions.close(session.session_id)
        except Exception as exc:
            _log.warning("mcp.sessions.unavailable", error=type(exc).__name__)
            return _rpc_error_answer(503, -32000, "Service Unavailable: sessions cannot be reached")
        if self.streams is not None:
            self.streams.end_session(session.session_id)
        return HttpAnswer(200, None)


def _no_get_or_delete() -> HttpAnswer:
    """2026-07-28 has no GET stream and no session to delete (``subscriptions/listen`` replaces both)."""
    answer = _rpc_error_answer(405, -32000, "Method Not Allowed: 2026-07-28 uses POST only")
    answer.headers["Allow"] = "POST"
    return answer


def _modern_may_notify(scope: RequestScope, req: Incoming) -> bool:
    """Whether a 2026-07-28 request may get anything before its result. Only progress (for a request
    with a progress token) and log messages (for one whose ``_meta`` asked for them) can come: its
    questions are ``input_required`` results and its cancellation is the client closing the answer.
    Without either, the answer is one JSON body and the call needs no stream around it."""
    if scope.state.get("logLevel") is not None:
        return True
    meta = req.params.get("_meta")
    return isinstance(meta, dict) and meta.get("progressToken") is not None


def _may_stream(catalog: Catalog, req: Incoming) -> bool:
    """Whether answering ``req`` may send anything before its result (only non-static handlers can)."""
    method = req.method
    if method == "tools/call":
        tool = catalog.tools.get(str(req.params.get("name")))
        return tool is not None and handler_kind(tool.handler) != "static"
    if method == "resources/read":
        resource = catalog.resources.get(str(req.params.get("uri")))
        return resource is None or resource.handler is not None
    if method == "prompts/get":
        prompt = catalog.prompts.get(str(req.params.get("name")))
        return prompt is not None and prompt.handler is not None
    return False
