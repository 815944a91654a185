"""Answers one stateless-era request: the method table of 2026-07-28 (no initialize, ping,
logging/setLevel or resources/(un)subscribe), results with ``resultType`` and caching hints, and
multi round-trip requests (``inputResponses`` in, ``input_required`` out)."""

from __future__ import annotations

from typing import Any

import structlog

from skillrelay_edge.calls.context import INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, RESOURCE_NOT_FOUND
from skillrelay_edge.modern import results
from skillrelay_edge.modern.inputs import NO_INPUTS, InputExchange, InputRequired, read_input_responses
from skillrelay_edge.modern.meta import MISSING_REQUIRED_CLIENT_CAPABILITY
from skillrelay_edge.modern.request_state import RequestStateCodec, request_digest
from skillrelay_edge.protocol.dispatcher import CATALOG_METHODS, MethodHandler
from skillrelay_edge.protocol.scope import RequestScope, Services
from skillrelay_edge.tasks import wire as task_wire
from skillrelay_edge.tasks.service import METHODS as TASK_METHODS
from skillrelay_edge.tasks.service import TaskCreated, TaskService
from skillrelay_edge.transport import jsonrpc
from skillrelay_edge.transport.jsonrpc import RpcError

_log = structlog.get_logger("skillrelay.edge.modern")

# No ping, logging/setLevel or resources/(un)subscribe: the stateless era has no session to hold them.
METHODS: dict[str, MethodHandler] = CATALOG_METHODS
# The requests that may answer ``input_required`` (SEP-2322); no other may.
INPUT_METHODS = frozenset({"tools/call", "resources/read", "prompts/get"})
# Handled by the endpoint itself (they answer with a stream or need no catalog work).
ENDPOINT_METHODS = frozenset({"server/discover", "subscriptions/listen"})


def knows(method: str) -> bool:
    return method in METHODS or method in ENDPOINT_METHODS or method in TASK_METHODS


def _missing_tasks_capability() -> RpcError:
    return RpcError(
        MISSING_REQUIRED_CLIENT_CAPABILITY,
        f"Missing required client capability: extension {task_wire.EXTENSION}",
        task_wire.REQUIRED_CAPABILITIES,
    )


def _subject(method: str, params: dict[str, Any]) -> tuple[str, str]:
    """What a requestState is bound to besides the caller: the request's name and its arguments."""
    if method == "resources/read":
        return str(params.get("uri", "")), request_digest({})
    return str(params.get("name", "")), request_digest(params.get("arguments") or {})


class ModernDispatcher:
    def __init__(
        self,
        services: Services,
        codec: RequestStateCodec,
        supported: tuple[str, ...],
        tasks: TaskService | None = None,
    ) -> None:
        self.services = services
        self.codec = codec
        self.supported = supported
        self.tasks = tasks

    async def answer(self, scope: RequestScope, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """The JSON-RPC response message for one request (never raises for client input)."""
        request_id = scope.request_id
        if method == "server/discover":
            discovered = results.discover(scope, self.services, self.supported, tasks=self.tasks is not None)
            return jsonrpc.result(request_id, discovered)
        if method in TASK_METHODS and self.tasks is not None:
            try:
                if not task_wire.declares_tasks(_client_capabilities(scope)):
                    raise _missing_tasks_capability()
                return jsonrpc.result(request_id, await self.tasks.answer(scope, method, params))
            except RpcError as exc:
                return jsonrpc.error(request_id, exc.code, exc.message, exc.data)
        handler = METHODS.get(method)
        if handler is None:
            return jsonrpc.error(request_id, METHOD_NOT_FOUND, f"Method not found: {method}")
        try:
            if method in INPUT_METHODS:
                scope.inputs = self._exchange(scope, method, params)
            if method == "tools/call" and self.tasks is not None:
                self._offer_tasks(scope, params)
            result = await handler(scope, self.services, params)
        except TaskCreated as exc:
            return jsonrpc.result(request_id, task_wire.created(exc.record))
        except InputRequired as exc:
            name, digest = _subject(method, params)
            state = self.codec.seal(
                integration_id=scope.catalog.integration.id,
                principal=scope.principal.id,
                method=method,
                name=name,
                digest=digest,
                resume=exc.resume,
            )
            return jsonrpc.result(request_id, results.input_required(exc.requests, state))
        except RpcError as exc:
            # SEP-2164: a resource that does not exist is Invalid params in this era.
            code = INVALID_PARAMS if exc.code == RESOURCE_NOT_FOUND else exc.code
            return jsonrpc.error(request_id, code, exc.message, exc.data)
        except Exception:
            _log.exception("mcp.method.failed", method=method)
            return jsonrpc.error(request_id, INTERNAL_ERROR, "Internal error")
        return jsonrpc.result(request_id, results.complete(result, results.ttl_for(scope, method, params)))

    def _offer_tasks(self, scope: RequestScope, params: dict[str, Any]) -> None:
        """A tool whose handler allows tasks may become one for a client that declared the extension
        (the handler decides, with ``ctx.start_task()``); a tool that requires it refuses other clients."""
        assert self.tasks is not None
        tool = scope.catalog.tools.get(str(params.get("name")))
        support = getattr(tool.handler, "task_support", "forbidden") if tool is not None else "forbidden"
        if support == "forbidden":
            return
        if task_wire.declares_tasks(_client_capabilities(scope)):
            scope.tasks = self.tasks.host(scope)
        elif support == "required":
            raise _missing_tasks_capability()

    def _exchange(self, scope: RequestScope, method: str, params: dict[str, Any]) -> InputExchange:
        if "inputResponses" not in params and "requestState" not in params:
            return NO_INPUTS
        responses = read_input_responses(params)
        token = params.get("requestState")
        if token is None:
            return InputExchange(responses)
        name, digest = _subject(method, params)
        resume = self.codec.open(
            token,
            integration_id=scope.catalog.integration.id,
            principal=scope.principal.id,
            method=method,
            name=name,
            digest=digest,
        )
        return InputExchange(responses, resume)


def _client_capabilities(scope: RequestScope) -> dict[str, Any]:
    capabilities = scope.state.get("clientCapabilities")
    return capabilities if isinstance(capabilities, dict) else {}
