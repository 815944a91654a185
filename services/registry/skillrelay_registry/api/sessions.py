"""``POST /api/v1/integration/mcpserver/{id}/session/end-idle``: the owner's clean-up of sessions."""

from __future__ import annotations

from litestar import post
from litestar.params import FromPath, JSONBody

from skillrelay_registry import schemas
from skillrelay_registry.api.common import OwnerId, Service


@post(
    "/integration/mcpserver/{integration_id:str}/session/end-idle",
    status_code=200,
    summary="End the sessions not used for idleMinutes or more",
    description="Most MCP clients never send DELETE, so their sessions last until the idle timeout; this "
    "ends those unused for at least idleMinutes (1 to 43200) at once. Their clients get 404 and initialize "
    "again. Answers how many were ended.",
    tags=["mcp server integrations"],
)
async def end_idle_sessions(
    service: Service, owner_id: OwnerId, integration_id: FromPath[str], data: JSONBody[schemas.SessionEndIdle]
) -> schemas.SessionsEnded:
    return await service.end_idle_sessions(owner_id, integration_id, data)
