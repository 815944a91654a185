"""Building the ``CallContext`` for a request that runs an ability, and running it."""

from __future__ import annotations

from typing import Any

from skillrelay_edge.calls.context import (
    CALL_LOST_MESSAGE,
    INTERNAL_ERROR,
    AbilityError,
    CallContext,
    CallMethod,
)
from skillrelay_edge.protocol.scope import RequestScope, Services, handler_kind
from skillrelay_edge.transport.jsonrpc import RpcError


def make_context(
    scope: RequestScope, method: CallMethod, name: str, target: Any, params: dict[str, Any]
) -> CallContext:
    raw_meta = params.get("_meta")
    meta = raw_meta if isinstance(raw_meta, dict) else {}
    token = meta.get("progressToken")
    state = scope.state
    capabilities = state.get("clientCapabilities")
    ctx = CallContext(
        method=method,
        name=name,
        integration=scope.catalog.integration,
        principal=scope.principal,
        session_id=scope.session_id,
        request_id=scope.request_id,
        progress_token=token if isinstance(token, str | int) and not isinstance(token, bool) else None,
        log_level=state.get("logLevel"),
        protocol_version=scope.protocol_version,
        client_capabilities=capabilities if isinstance(capabilities, dict) else {},
        meta={key: value for key, value in meta.items() if key != "progressToken"} if meta else {},
        target=target,
        source=scope.catalog.source_of(target),
        # Stateless era: log messages only for a request that asked for them (``_meta`` logLevel).
        logs_off=scope.modern and state.get("logLevel") is None,
        inputs=scope.inputs,
        tasks=scope.tasks,
    )
    if scope.sink is not None:
        scope.sink.bind(ctx)
    return ctx


async def run_handler(
    services: Services, ctx: CallContext, handler: Any, arguments: dict[str, Any]
) -> dict[str, Any]:
    kind = handler_kind(handler)
    if ctx.adopt is not None and kind != "worker":
        # Only a worker call can be taken over; anything else would run a second time.
        raise AbilityError(CALL_LOST_MESSAGE, INTERNAL_ERROR)
    runner = services.runners.get(kind)
    if runner is None:
        raise RpcError(INTERNAL_ERROR, f"no runner for {handler_kind(handler) or 'missing'} handlers")
    return await runner.run(ctx, handler, arguments)
