"""``GET /api/v1/integration/mcpserver/{id}/audit/list``: page through the stored audit records of one
integration (oldest first), read from the ``AUDIT`` JetStream stream by subject filter.

Only the integration's owner may read them (the registry's own lookup answers 404 otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Protocol

import msgspec
import structlog
from litestar import Router, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter

from skillrelay_common.audit import read_records
from skillrelay_common.http import ApiError
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.audit import AUDIT_KINDS, AuditRecord
from skillrelay_common.subjects import AUDIT_STREAM, audit_filter, audit_subject

MAX_TAKE = 100
_log = structlog.get_logger("skillrelay.registry.audit")


class AuditPageOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A page of audit records; ``cursor`` (absent on the last page) asks for the next one."""

    items: list[AuditRecord]
    cursor: str | None = None


class IntegrationLookup(Protocol):
    async def get_integration(self, owner_id: str, integration_id: str) -> Any: ...


def _start(cursor: str | None) -> int:
    if cursor is None:
        return 1
    if not cursor.isdigit() or len(cursor) > 19 or int(cursor) < 1:
        raise ApiError(400, "bad_request", "cursor must be a cursor from a previous page")
    return int(cursor)


def audit_routes(
    get_bus: Callable[[], Bus],
    *,
    dependencies: dict[str, Provide] | None = None,
    stream_name: str = AUDIT_STREAM.name,
) -> list[Router]:
    """The audit route, under the registry's owner authentication (``dependencies`` defaults to the
    registry's ``service`` + ``owner_id`` providers)."""
    if dependencies is None:
        from skillrelay_registry.api.common import owner_dependencies

        dependencies = owner_dependencies()

    @get(
        "/integration/mcpserver/{integration_id:str}/audit/list",
        summary="Stored audit records of an integration, oldest first",
        description="Every MCP request, tool call, auth failure, token rotation, OAuth grant and session "
        "change of the integration (never a token or secret). Page with cursor; filter with kind.",
        tags=["mcp server integrations"],
    )
    async def list_audit(
        service: NamedDependency[Any],
        owner_id: NamedDependency[str],
        integration_id: FromPath[str],
        cursor: Annotated[
            str | None, QueryParameter(description="opaque cursor from the previous page")
        ] = None,
        take: Annotated[int, QueryParameter(ge=1, le=MAX_TAKE, description="page size")] = 20,
        kind: Annotated[
            str | None, QueryParameter(description=f"only this kind: {', '.join(AUDIT_KINDS)}")
        ] = None,
    ) -> AuditPageOut:
        lookup: IntegrationLookup = service
        await lookup.get_integration(owner_id, integration_id)  # 404 unless it is the caller's
        if kind is not None and kind not in AUDIT_KINDS:
            raise ApiError(400, "bad_request", f"kind must be one of {', '.join(AUDIT_KINDS)}")
        subject = audit_subject(integration_id, kind) if kind else audit_filter(integration_id)
        try:
            items, next_start = await read_records(
                get_bus(), subject, start=_start(cursor), limit=take, stream_name=stream_name
            )
        except ApiError:
            raise
        except Exception as exc:
            _log.warning("audit.list.failed", error=repr(exc))
            raise ApiError(503, "unavailable", "the audit store is not reachable") from exc
        return AuditPageOut(
            items=[record for _, record in items],
            cursor=str(next_start) if next_start is not None else None,
        )

    return [
        Router("/api/v1", route_handlers=[list_audit], dependencies=dependencies, security=[{"apiKey": []}])
    ]
