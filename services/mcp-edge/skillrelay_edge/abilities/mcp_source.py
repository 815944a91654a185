"""The ``mcp`` source handler kind: forward the call to the skillset source's upstream MCP server.

The upstream is reached with the source's own headers (never the client's credentials), through one
``UpstreamConnection`` per source on this replica (``skillrelay_common.upstream``: the era it speaks,
its session, a pinned connection pool). What it sends while it works reaches the client:

- progress and log messages become the client's own ``notifications/progress`` / ``message``;
- a question to the client (elicitation, sampling, roots), whichever era each side speaks:
  2025 upstream and 2025 client: the server-to-client request is relayed on the call's stream;
  2026 upstream and 2025 client: its ``input_required`` questions are asked on the call's stream and
  the upstream is retried with the answers; 2026 upstream and 2026 client: passed through, the
  upstream's ``requestState`` sealed inside the edge's own (any replica takes the retry);
  2025 upstream and 2026 client: the upstream's open request is parked on this replica and its
  question asked with ``input_required``; the retry, on any replica, brings the answer back here over
  NATS (``abilities.parked``);
- the client's cancellation ends the upstream request (2025: ``notifications/cancelled``; 2026: the
  stream is closed, which cancels it).

An unreachable upstream, or one silent past the source's ``timeoutMs``, is a tool error naming the
source; nothing else in the skillset is touched. From the first call forwarded to it, the upstream is
watched for ``list_changed``, and each one asks the registry to read the source again
(``registry.source.refresh``); the registry's ``source`` event then reaches every replica's clients.
Its ``resources/updated`` (for the upstream's resources, when it offers subscriptions) asks the
registry to tell every replica (``registry.source.resource_updated``): clients subscribed to that URI
hear it wherever they listen.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import httpx
import structlog

from skillrelay_common.messaging import Bus
from skillrelay_common.metrics import SOURCE_CALL_SECONDS, SOURCE_CALLS
from skillrelay_common.outbound import OutboundClient
from skillrelay_common.outbound.targets import TargetCache
from skillrelay_common.schemas.abilities import AbilityDef, McpSourceHandler, SourceDef
from skillrelay_common.schemas.base import Unavailable
from skillrelay_common.schemas.edge import ParkedStep
from skillrelay_common.schemas.registry import RefreshSource, SourceResourceUpdated
from skillrelay_common.subjects import REGISTRY_SOURCE_REFRESH, REGISTRY_SOURCE_RESOURCE_UPDATED
from skillrelay_common.upstream import (
    UpstreamConnection,
    UpstreamError,
    UpstreamRpcError,
    new_http_client,
    watch_changes,
)
from skillrelay_common.upstream.client import Era
from skillrelay_edge.abilities.parked import GONE, PARKED_PREFIX, ParkedCall, ParkedCalls
from skillrelay_edge.calls.context import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    AbilityError,
    CallContext,
    ClientRequestError,
)
from skillrelay_edge.modern.inputs import CAPABILITY_OF, InputRequired, ResumePoint
from skillrelay_edge.transport.jsonrpc import RpcError

_log = structlog.get_logger("skillrelay.edge.source")
# Marks a resume point that holds an upstream's requestState (not a worker call id).
UPSTREAM_STATE_PREFIX = "upstream:"
# How long a 2026 client may take to answer an upstream's question (a person may be answering).
INPUT_WINDOW_SECONDS = 600.0
# Rounds of questions one call may go through before the edge gives up on the upstream.
MAX_INPUT_ROUNDS = 8
# Fields of a 2026 upstream result that describe its answer: the edge states its own.
_ANSWER_FIELDS = ("resultType", "ttlMs", "cacheScope")


class UpstreamNotices(Protocol):
    """Where what an upstream says of its own changes goes (``RegistryNotices``: to the registry)."""

    async def list_changed(self, source_id: str) -> None: ...

    async def resource_updated(self, source_id: str, uri: str) -> None: ...


class SourceConnections:
    """One ``UpstreamConnection`` per source on this replica, replaced when the source changes.

    With ``notices``, each connection's upstream is also watched (``watch_changes``) from the first
    call forwarded to it: its ``list_changed`` and ``resources/updated`` go to ``notices``."""

    def __init__(
        self,
        *,
        allow_private: bool,
        eras: tuple[Era, ...] = ("stateless", "session"),
        notices: UpstreamNotices | None = None,
    ) -> None:
        self.targets = TargetCache(allow_private=allow_private)
        self.http: httpx.AsyncClient = new_http_client()  # change streams, posted answers, DELETE
        self.outbound = OutboundClient(self.targets)  # calls: the lean pooled HTTP/1.1 client
        self.eras = eras
        self._notices = notices
        self._by_id: dict[str, UpstreamConnection] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def get(self, source: SourceDef) -> UpstreamConnection:
        known = self._by_id.get(source.id)
        if known is not None and known.source == source:
            return known
        connection = UpstreamConnection(
            source, targets=self.targets, http=self.http, outbound=self.outbound, eras=self.eras
        )
        self._by_id[source.id] = connection
        old_watcher = self._watchers.pop(source.id, None)
        if old_watcher is not None:
            old_watcher.cancel()
        if self._notices is not None:
            notices = self._notices

            async def changed(method: str) -> None:
                await notices.list_changed(source.id)

            async def updated(uri: str) -> None:
                await notices.resource_updated(source.id, uri)

            self._watchers[source.id] = asyncio.create_task(watch_changes(connection, changed, updated))
        if known is not None:  # the source was edited: its old session ends in the background
            task = asyncio.create_task(known.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return connection

    async def aclose(self) -> None:
        for watcher in self._watchers.values():
            watcher.cancel()
        await asyncio.gather(*self._watchers.values(), return_exceptions=True)
        self._watchers.clear()
        connections = list(self._by_id.values())
        self._by_id.clear()
        await asyncio.gather(*(connection.aclose() for connection in connections), return_exceptions=True)
        await self.http.aclose()
        await self.outbound.aclose()


class McpSourceRunner:
    """``AbilityRunner`` for ``{"type": "mcp", "sourceId", "name"}`` handlers."""

    def __init__(
        self,
        *,
        allow_private_targets: bool,
        eras: tuple[Era, ...] = ("stateless", "session"),
        notices: UpstreamNotices | None = None,
    ) -> None:
        self.connections = SourceConnections(allow_private=allow_private_targets, eras=eras, notices=notices)
        # Calls of 2025-session upstreams waiting for a 2026 client's answer. This replica's own
        # until the edge runtime attaches the one that serves other replicas' retries over NATS.
        self.parked = ParkedCalls()

    async def aclose(self) -> None:
        await self.connections.aclose()

    async def run(self, ctx: CallContext, handler: Any, arguments: dict[str, Any]) -> dict[str, Any]:
        assert isinstance(handler, McpSourceHandler)
        source = ctx.source
        if not isinstance(source, SourceDef) or source.id != handler.source_id:
            raise AbilityError(
                f"source {handler.source_id} is not in this skillset (it may have been removed)"
            )
        connection = self.connections.get(source)
        method, params = _upstream_request(ctx, handler, arguments)
        relay = _Relay(ctx, connection)
        interrupt = _Interrupt(asyncio.current_task(), connection, relay)
        ctx.on_cancel(interrupt)
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await self._forward(ctx, connection, method, params, relay)
        except asyncio.CancelledError:
            if not interrupt.fired:
                raise
            interrupt.uncancel()
            outcome = "cancelled"
            raise AbilityError("cancelled by the client", INTERNAL_ERROR) from None
        except UpstreamRpcError as exc:
            outcome = "error"
            # The upstream's own JSON-RPC error (unknown tool, invalid params…): the client sees it as is.
            raise RpcError(exc.code, exc.message, exc.data) from None
        except UpstreamError as exc:
            outcome = "unreachable"
            _log.info("source.call.failed", source=source.id, method=ctx.method, reason=exc.message)
            raise AbilityError(exc.message, INTERNAL_ERROR) from None
        except InputRequired:
            outcome = "input_required"
            raise
        except AbilityError:
            outcome = "error"
            raise
        finally:
            interrupt.active = False
            SOURCE_CALLS.labels(source.id, ctx.method, outcome).inc()
            SOURCE_CALL_SECONDS.labels(source.id).observe(time.perf_counter() - started)

    async def _forward(
        self,
        ctx: CallContext,
        connection: UpstreamConnection,
        method: str,
        params: dict[str, Any],
        relay: _Relay,
    ) -> dict[str, Any]:
        inputs = ctx.inputs
        if inputs is not None:  # a 2026 client's retry carries answers for the upstream
            resume = inputs.resume
            if resume is not None and resume.call_id.startswith(PARKED_PREFIX):
                step = await self.parked.resume(
                    resume.call_id,
                    integration_id=ctx.integration.id,
                    principal=ctx.principal.id,
                    responses=dict(inputs.responses),
                    deadline=resume.deadline,
                )
                return _settled(step, resume)
            if resume is not None and resume.call_id.startswith(UPSTREAM_STATE_PREFIX):
                state = resume.call_id[len(UPSTREAM_STATE_PREFIX) :]
                if state:
                    params["requestState"] = state
            await connection.connect()
            if connection.era == "session":
                return await self._park(relay, method, params)
            if inputs.responses:
                params["inputResponses"] = dict(inputs.responses)
        for _round in range(MAX_INPUT_ROUNDS):
            result = await connection.request(
                method,
                params,
                messages=relay,
                client_capabilities=ctx.client_capabilities,
                log_level=None if ctx.logs_off else (ctx.log_level or "debug"),
                on_request_id=relay.bind,
                input_schema=_input_schema(ctx),
            )
            if result.get("resultType") != "input_required":
                return _answer(result)
            requests = result.get("inputRequests")
            requests = requests if isinstance(requests, dict) else {}
            state = result.get("requestState")
            if ctx.inputs is not None:
                # 2026 client: the question goes back as our own input_required; the retry (to any
                # replica) brings the answers and the upstream's state, sealed and bound to this caller.
                resume = ResumePoint(
                    UPSTREAM_STATE_PREFIX + (state if isinstance(state, str) else ""),
                    0,
                    time.time() + INPUT_WINDOW_SECONDS,
                )
                raise InputRequired(requests, resume)
            # 2025 client: ask it on the call's stream, then retry the upstream with the answers.
            params = {
                key: value for key, value in params.items() if key not in {"requestState", "inputResponses"}
            }
            params["inputResponses"] = await _ask_each(ctx, requests, connection.timeout)
            if isinstance(state, str):
                params["requestState"] = state
        raise AbilityError(f"upstream {connection.label} asked for input more than {MAX_INPUT_ROUNDS} times")

    async def _park(self, relay: _Relay, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """A 2026 client calls a 2025-session upstream: the request runs parked, so a question the
        upstream asks on its open stream can outlive this request (``abilities.parked``)."""
        ctx, connection = relay.ctx, relay.connection
        log_level = None if ctx.logs_off else (ctx.log_level or "debug")

        async def start(parked: ParkedCall) -> dict[str, Any]:
            return await connection.request(
                method,
                params,
                messages=parked,
                client_capabilities=ctx.client_capabilities,
                log_level=log_level,
                on_request_id=parked.bind,
            )

        parked = self.parked.park(
            connection,
            start,
            integration_id=ctx.integration.id,
            principal=ctx.principal.id,
            capabilities=ctx.client_capabilities,
            notify=relay.notify,
            lifetime=min(connection.timeout, INPUT_WINDOW_SECONDS),
        )
        step = await self.parked.first_step(parked)
        return _settled(step, ResumePoint(self.parked.resume_id(parked), 0, parked.deadline))


def _upstream_request(
    ctx: CallContext, handler: McpSourceHandler, arguments: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The upstream's method and params: the upstream's own name (the exposed one may be prefixed)."""
    params: dict[str, Any]
    if ctx.method == "tools/call" or ctx.method == "prompts/get":
        params = {"name": handler.name, "arguments": arguments}
    elif ctx.method == "resources/read":
        variables = {key: value for key, value in arguments.items() if key != "uri"}
        uri = _expand(handler.name, variables) if "{" in handler.name else handler.name
        params = {"uri": uri}
    else:  # completion/complete: the ref names the upstream's prompt or resource template
        ref = dict(arguments.get("ref") or {})
        ref["uri" if ref.get("type") == "ref/resource" else "name"] = handler.name
        params = {key: value for key, value in arguments.items() if key != "ref"}
        params["ref"] = ref
    if ctx.progress_token is not None:
        params["_meta"] = {"progressToken": ctx.progress_token}
    return ctx.method, params


def _input_schema(ctx: CallContext) -> dict[str, Any] | None:
    """The called tool's inputSchema, which is the upstream's own (its ``x-mcp-header`` marks say
    which arguments a 2026 upstream expects mirrored in ``Mcp-Param-*`` headers)."""
    return ctx.target.input_schema if isinstance(ctx.target, AbilityDef) else None


def _expand(template: str, variables: dict[str, Any]) -> str:
    """The upstream's URI from its template and the variables matched from the client's URI."""
    out: list[str] = []
    rest = template
    while "{" in rest:
        before, _, after = rest.partition("{")
        expression, _, rest = after.partition("}")
        out.append(before)
        names = expression.lstrip("+#./;?&").split(",")
        out.append(",".join(str(variables.get(name.rstrip("*"), "")) for name in names))
    out.append(rest)
    return "".join(out)


def _settled(step: ParkedStep, resume: ResumePoint) -> dict[str, Any]:
    """A parked call's step as this request's outcome (its next question: ``input_required`` again)."""
    if step.outcome == "result" and step.result is not None:
        return _answer(step.result)
    if step.outcome == "input" and step.requests:
        raise InputRequired(step.requests, resume)
    if step.outcome == "rpc_error":
        raise UpstreamRpcError(step.code, step.message, step.data)
    if step.outcome == "upstream_error":
        raise UpstreamError(step.message)
    raise AbilityError(step.message or GONE)


def _answer(result: dict[str, Any]) -> dict[str, Any]:
    if any(field in result for field in _ANSWER_FIELDS):
        return {key: value for key, value in result.items() if key not in _ANSWER_FIELDS}
    return result


async def _ask_each(ctx: CallContext, requests: dict[str, Any], timeout: float) -> dict[str, Any]:
    """A 2026 upstream's questions asked of a 2025 client (at once), answers by the upstream's keys."""
    keys = list(requests)

    async def ask(key: str) -> dict[str, Any]:
        request = requests[key] if isinstance(requests[key], dict) else {}
        method = str(request.get("method", ""))
        params = request.get("params") if isinstance(request.get("params"), dict) else {}
        _require_capability(ctx, method)
        try:
            return await ctx.request_client(method, params or {}, timeout)
        except ClientRequestError as exc:
            raise AbilityError(f"the client could not answer {method}: {exc.message}") from None

    answers = await asyncio.gather(*(ask(key) for key in keys))
    return dict(zip(keys, answers, strict=True))


def _require_capability(ctx: CallContext, method: str) -> None:
    capability = CAPABILITY_OF.get(method)
    if capability is None:
        raise AbilityError(f"the upstream asked the client {method!r}, which the edge does not relay")
    if capability not in ctx.client_capabilities:
        raise AbilityError(
            f"the upstream needs the client's {capability} capability, which it did not declare"
        )


class _Relay:
    """What the upstream sends during one call, handed to the client's request."""

    __slots__ = ("connection", "ctx", "request_id")

    def __init__(self, ctx: CallContext, connection: UpstreamConnection) -> None:
        self.ctx = ctx
        self.connection = connection
        self.request_id: int | None = None

    def bind(self, request_id: int) -> None:
        self.request_id = request_id

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        if method == "notifications/progress":
            progress = params.get("progress")
            if isinstance(progress, int | float):
                total = params.get("total")
                message = params.get("message")
                await self.ctx.progress(
                    progress,
                    total if isinstance(total, int | float) else None,
                    message if isinstance(message, str) else None,
                )
        elif method == "notifications/message":
            level = params.get("level")
            logger = params.get("logger")
            await self.ctx.log(
                level if isinstance(level, str) else "info",
                params.get("data"),
                logger if isinstance(logger, str) else None,
            )

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """A 2025 upstream's server-to-client request, relayed to the client of this call."""
        if self.ctx.inputs is not None:
            # A 2026 client is asked only through input_required (a session-era upstream's call runs
            # parked, see ``_park``): nothing else asks it.
            raise UpstreamRpcError(METHOD_NOT_FOUND, f"{method} cannot be relayed on this request")
        capability = CAPABILITY_OF.get(method)
        if capability is not None and capability not in self.ctx.client_capabilities:
            raise UpstreamRpcError(INVALID_REQUEST, f"the client does not support {capability}")
        try:
            return await self.ctx.request_client(method, params, self.connection.timeout)
        except ClientRequestError as exc:
            raise UpstreamRpcError(exc.code, exc.message, exc.data) from None


class _Interrupt:
    """The client cancelled: stop waiting for the upstream and tell it (2025: ``notifications/cancelled``;
    2026: the closed stream says it)."""

    __slots__ = ("_connection", "_relay", "active", "fired", "task")

    def __init__(self, task: asyncio.Task[Any] | None, connection: UpstreamConnection, relay: _Relay) -> None:
        self.task = task
        self._connection = connection
        self._relay = relay
        self.active = True
        self.fired = False

    def __call__(self) -> None:
        if not self.active or self.task is None or self.fired:
            return
        self.fired = True
        self.task.cancel()
        request_id = self._relay.request_id
        if self._connection.era == "session" and request_id is not None:
            params = {"requestId": request_id, "reason": "cancelled by the client"}
            notice = asyncio.ensure_future(self._connection.notify("notifications/cancelled", params))
            _pending.add(notice)
            notice.add_done_callback(_pending.discard)

    def uncancel(self) -> None:
        if self.task is not None:
            self.task.uncancel()


# Cancellation notices on their way to upstreams (kept referenced until sent).
_pending: set[asyncio.Future[None]] = set()


class RegistryNotices:
    """``UpstreamNotices`` for the edge: an upstream's ``list_changed`` asks the registry to read the
    source again (its ``source`` event reloads every replica's snapshot and tells their clients
    ``list_changed``); its ``resources/updated`` asks the registry to say so to every replica (a
    ``resource`` event: clients subscribed to the URI are told, on whichever replica they listen)."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def list_changed(self, source_id: str) -> None:
        answer = await self._bus.request(
            REGISTRY_SOURCE_REFRESH, RefreshSource(source_id=source_id), timeout=5.0
        )
        if isinstance(answer, Unavailable):
            _log.warning("source.refresh.unavailable", source=source_id, reason=answer.message)

    async def resource_updated(self, source_id: str, uri: str) -> None:
        notice = SourceResourceUpdated(source_id=source_id, uri=uri)
        answer = await self._bus.request(REGISTRY_SOURCE_RESOURCE_UPDATED, notice, timeout=5.0)
        if isinstance(answer, Unavailable):
            _log.warning("source.resource_updated.unavailable", source=source_id, reason=answer.message)
