"""Rows to records: what the REST API (and dashboard) show, and what the edge receives over NATS."""

from __future__ import annotations

from typing import Any, TypeVar, cast

import msgspec

from skillrelay_common.schemas.abilities import (
    AbilityDef,
    DynamicHandler,
    Handler,
    PromptArgument,
    PromptDef,
    PromptMessage,
    ResourceDef,
)
from skillrelay_common.schemas.registry import IntegrationInfo, SessionMode, SkillsetSnapshot
from skillrelay_registry import schemas
from skillrelay_registry.models import (
    Ability,
    Blueprint,
    Integration,
    OAuthConnection,
    Prompt,
    Resource,
    Skillset,
)

StructT = TypeVar("StructT", bound=msgspec.Struct)


def endpoint_url(edge_public_url: str, integration_id: str) -> str:
    return f"{edge_public_url}/api/v1/integration/mcpserver/{integration_id}/mcp"


def handler_json(handler: Handler) -> dict[str, Any]:
    """A handler as stored: its camelCase JSON with the ``type`` tag."""
    return cast(dict[str, Any], msgspec.to_builtins(handler))


def load_handler(stored: dict[str, Any]) -> Handler:
    return cast(Handler, msgspec.convert(stored, Handler))


def load_dynamic_handler(stored: dict[str, Any] | None) -> DynamicHandler | None:
    return None if stored is None else cast(DynamicHandler, msgspec.convert(stored, DynamicHandler))


def from_row(struct: type[StructT], row: object, **given: Any) -> StructT:
    """``struct`` with each field the row's attribute of the same name, unless ``given``: a field the
    row lacks must be given (an ``AttributeError`` otherwise, never a silent default)."""
    names = [field.name for field in msgspec.structs.fields(struct) if field.name not in given]
    return struct(**{name: getattr(row, name) for name in names}, **given)


def blueprint_out(row: Blueprint) -> schemas.BlueprintOut:
    return from_row(schemas.BlueprintOut, row)


def skillset_out(row: Skillset) -> schemas.SkillsetOut:
    return from_row(schemas.SkillsetOut, row)


def ability_out(row: Ability) -> schemas.AbilityOut:
    return from_row(schemas.AbilityOut, row, handler=load_handler(row.handler))


def resource_out(row: Resource) -> schemas.ResourceOut:
    return from_row(
        schemas.ResourceOut, row, text=row.text_content, handler=load_dynamic_handler(row.handler)
    )


def prompt_out(row: Prompt) -> schemas.PromptOut:
    return from_row(schemas.PromptOut, row, handler=load_dynamic_handler(row.handler))


def oauth_connection_out(row: OAuthConnection) -> schemas.OAuthConnectionOut:
    return from_row(schemas.OAuthConnectionOut, row, scopes=list(row.scopes))


def integration_out(row: Integration, edge_public_url: str) -> schemas.IntegrationOut:
    return from_row(
        schemas.IntegrationOut,
        row,
        o_auth_connection_id=row.oauth_connection_id,
        session_mode=cast(SessionMode, row.session_mode),
        endpoint=endpoint_url(edge_public_url, row.id),
    )


# --- NATS snapshots --------------------------------------------------------------------------------


def integration_info(row: Integration) -> IntegrationInfo:
    return from_row(
        IntegrationInfo,
        row,
        o_auth_connection_id=row.oauth_connection_id,
        session_mode=cast(SessionMode, row.session_mode),
        session_ttl_seconds=row.session_idle_minutes * 60.0,
    )


def ability_def(row: Ability) -> AbilityDef:
    return from_row(AbilityDef, row, handler=load_handler(row.handler))


def resource_def(row: Resource) -> ResourceDef:
    return from_row(ResourceDef, row, text=row.text_content, handler=load_dynamic_handler(row.handler))


def prompt_def(row: Prompt) -> PromptDef:
    return from_row(
        PromptDef,
        row,
        arguments=msgspec.convert(row.arguments, list[PromptArgument]),
        messages=msgspec.convert(row.messages, list[PromptMessage]),
        handler=load_dynamic_handler(row.handler),
    )


def skillset_snapshot(
    skillset: Skillset, abilities: list[Ability], resources: list[Resource], prompts: list[Prompt]
) -> SkillsetSnapshot:
    return SkillsetSnapshot(
        id=skillset.id,
        name=skillset.name,
        description=skillset.description,
        revision=skillset.revision,
        abilities=[ability_def(row) for row in abilities],
        resources=[resource_def(row) for row in resources],
        prompts=[prompt_def(row) for row in prompts],
    )
