"""Rows to records: what the REST API (and dashboard) show, and what the edge receives over NATS."""

from __future__ import annotations

from typing import Any, cast

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


def endpoint_url(edge_public_url: str, integration_id: str) -> str:
    return f"{edge_public_url}/api/v1/integration/mcpserver/{integration_id}/mcp"


def handler_json(handler: Handler) -> dict[str, Any]:
    """A handler as stored: its camelCase JSON with the ``type`` tag."""
    return cast(dict[str, Any], msgspec.to_builtins(handler))


def load_handler(stored: dict[str, Any]) -> Handler:
    return cast(Handler, msgspec.convert(stored, Handler))


def load_dynamic_handler(stored: dict[str, Any] | None) -> DynamicHandler | None:
    return None if stored is None else cast(DynamicHandler, msgspec.convert(stored, DynamicHandler))


def blueprint_out(row: Blueprint) -> schemas.BlueprintOut:
    return schemas.BlueprintOut(
        id=row.id,
        name=row.name,
        description=row.description,
        meta=row.meta,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def skillset_out(row: Skillset) -> schemas.SkillsetOut:
    return schemas.SkillsetOut(
        id=row.id,
        name=row.name,
        description=row.description,
        blueprint_id=row.blueprint_id,
        meta=row.meta,
        revision=row.revision,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _item_fields(row: Ability | Resource | Prompt) -> dict[str, Any]:
    """What every ability, resource and prompt record shows (``schemas.SkillsetItemOut``)."""
    return {
        "id": row.id,
        "skillset_id": row.skillset_id,
        "name": row.name,
        "title": row.title,
        "description": row.description,
        "meta": row.meta,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def ability_out(row: Ability) -> schemas.AbilityOut:
    return schemas.AbilityOut(
        **_item_fields(row),
        input_schema=row.input_schema,
        output_schema=row.output_schema,
        annotations=row.annotations,
        handler=load_handler(row.handler),
    )


def resource_out(row: Resource) -> schemas.ResourceOut:
    return schemas.ResourceOut(
        **_item_fields(row),
        uri=row.uri,
        uri_template=row.uri_template,
        mime_type=row.mime_type,
        text=row.text_content,
        blob=row.blob,
        handler=load_dynamic_handler(row.handler),
        annotations=row.annotations,
        size=row.size,
    )


def prompt_out(row: Prompt) -> schemas.PromptOut:
    return schemas.PromptOut(
        **_item_fields(row),
        arguments=row.arguments,
        messages=row.messages,
        handler=load_dynamic_handler(row.handler),
    )


def oauth_connection_out(row: OAuthConnection) -> schemas.OAuthConnectionOut:
    return schemas.OAuthConnectionOut(
        id=row.id,
        name=row.name,
        description=row.description,
        client_id=row.client_id,
        scopes=list(row.scopes),
        issuer=row.issuer,
        authorization_url=row.authorization_url,
        token_url=row.token_url,
        userinfo_url=row.userinfo_url,
        meta=row.meta,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def integration_out(row: Integration, edge_public_url: str) -> schemas.IntegrationOut:
    return schemas.IntegrationOut(
        id=row.id,
        name=row.name,
        description=row.description,
        skillset_id=row.skillset_id,
        blueprint_id=row.blueprint_id,
        o_auth_connection_id=row.oauth_connection_id,
        session_mode=cast(SessionMode, row.session_mode),
        max_sessions=row.max_sessions,
        session_idle_minutes=row.session_idle_minutes,
        endpoint=endpoint_url(edge_public_url, row.id),
        meta=row.meta,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# --- NATS snapshots --------------------------------------------------------------------------------


def integration_info(row: Integration) -> IntegrationInfo:
    return IntegrationInfo(
        id=row.id,
        owner_id=row.owner_id,
        name=row.name,
        description=row.description,
        skillset_id=row.skillset_id,
        blueprint_id=row.blueprint_id,
        o_auth_connection_id=row.oauth_connection_id,
        oauth_generation=row.oauth_generation,
        session_mode=cast(SessionMode, row.session_mode),
        max_sessions=row.max_sessions,
        session_ttl_seconds=row.session_idle_minutes * 60.0,
    )


def ability_def(row: Ability) -> AbilityDef:
    return AbilityDef(
        id=row.id,
        name=row.name,
        description=row.description,
        title=row.title,
        input_schema=row.input_schema,
        output_schema=row.output_schema,
        annotations=row.annotations,
        handler=load_handler(row.handler),
        meta=row.meta,
    )


def resource_def(row: Resource) -> ResourceDef:
    return ResourceDef(
        id=row.id,
        name=row.name,
        uri=row.uri,
        uri_template=row.uri_template,
        title=row.title,
        description=row.description,
        mime_type=row.mime_type,
        text=row.text_content,
        blob=row.blob,
        handler=load_dynamic_handler(row.handler),
        annotations=row.annotations,
        size=row.size,
        meta=row.meta,
    )


def prompt_def(row: Prompt) -> PromptDef:
    return PromptDef(
        id=row.id,
        name=row.name,
        title=row.title,
        description=row.description,
        arguments=msgspec.convert(row.arguments, list[PromptArgument]),
        messages=msgspec.convert(row.messages, list[PromptMessage]),
        handler=load_dynamic_handler(row.handler),
        meta=row.meta,
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
