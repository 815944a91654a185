"""What a method handler knows about the request it answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from skillrelay_common.schemas.sessions import SessionInfo
from skillrelay_edge.calls.context import AbilityRunner, AnswerSink, PrincipalLike, RequestId
from skillrelay_edge.integrations.catalog import Catalog


class SessionStore(Protocol):
    async def update_state(
        self,
        session_id: str,
        state: dict[str, Any],
        protocol_version: str | None = None,
        *,
        add_items: dict[str, list[str]] | None = None,
        remove_items: dict[str, list[str]] | None = None,
    ) -> SessionInfo | None: ...


@dataclass
class RequestScope:
    catalog: Catalog
    principal: PrincipalLike
    session: SessionInfo | None
    protocol_version: str
    request_id: RequestId | None = None
    # Where the call this request runs sends its answer (bound to its ``CallContext``); None: nothing
    # can come before the result, so the context keeps ``NO_SINK``.
    sink: AnswerSink | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Stateless era (2026-07-28): what the request's ``_meta`` says of the client (there is no
    # session to hold it), and the multi round-trip answers and resume point it carries.
    modern: bool = False
    client_state: dict[str, Any] | None = None
    inputs: Any = None  # modern.inputs.InputExchange
    tasks: Any = None  # tasks.service.TaskHost: the request may be answered with a task

    @property
    def session_id(self) -> str | None:
        return self.session.session_id if self.session is not None else None

    @property
    def state(self) -> dict[str, Any]:
        if self.session is not None:
            return self.session.state
        return self.client_state if self.client_state is not None else {}


@dataclass(frozen=True)
class Services:
    """What method handlers may use beyond the scope."""

    sessions: SessionStore
    runners: Mapping[str, AbilityRunner]
    server_name: str = "skillrelay"
    server_version: str = "0.1.0"
    # Told a session's new resource subscriptions, for the replica holding its GET stream.
    on_subscriptions: Callable[[str, list[str]], Awaitable[None]] | None = None


def handler_kind(handler: Any) -> str:
    return str(type(handler).__struct_config__.tag) if handler is not None else ""
