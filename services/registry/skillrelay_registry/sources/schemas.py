"""Request bodies and answers of ``/api/v1/skillset/{id}/source/*`` (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from skillrelay_registry.schemas import Body, Meta, Record

SourceType = Literal["mcp", "openapi"]
SourceStatus = Literal["ok", "error", "pending"]
TimeoutMs = Annotated[int, msgspec.Meta(ge=100, le=120_000)]
NameList = Annotated[list[str], msgspec.Meta(max_length=500)]


class SourceCreate(Body):
    """``mcp``: ``url`` of the upstream MCP server. ``openapi``: the ``document`` inline or its ``url``,
    and ``baseUrl`` (or an absolute ``servers`` entry in the document)."""

    type: SourceType
    name: str | None = None
    url: str | None = None
    document: dict[str, Any] | None = None
    base_url: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    include: NameList = msgspec.field(default_factory=list)
    exclude: NameList = msgspec.field(default_factory=list)
    prefix: str = ""
    timeout_ms: TimeoutMs = 30_000
    meta: Meta = msgspec.field(default_factory=dict)


class SourceUpdate(Body):
    """Any field but ``type``; ``headers`` replace all the headers (``{}`` removes them)."""

    name: str | UnsetType = UNSET
    url: str | UnsetType | None = UNSET
    document: dict[str, Any] | UnsetType | None = UNSET
    base_url: str | UnsetType | None = UNSET
    headers: dict[str, str] | UnsetType = UNSET
    include: NameList | UnsetType = UNSET
    exclude: NameList | UnsetType = UNSET
    prefix: str | UnsetType = UNSET
    timeout_ms: TimeoutMs | UnsetType = UNSET
    meta: Meta | UnsetType = UNSET


class SourceOut(Record):
    """Never carries header values (only their names) nor an inline document (only ``hasDocument``).
    ``tools``, ``resources`` and ``prompts`` are what the source brings, as the skillset exposes them;
    ``warnings`` name those left out because the skillset's own items or an earlier source already
    expose the same name (or URI)."""

    id: str
    skillset_id: str
    type: SourceType
    name: str
    status: SourceStatus
    header_names: list[str]
    include: list[str]
    exclude: list[str]
    prefix: str
    timeout_ms: int
    has_document: bool
    tools: list[str]
    resources: list[str]
    prompts: list[str]
    meta: Meta
    created_at: datetime
    updated_at: datetime
    url: str | None = None
    base_url: str | None = None
    last_refresh_at: datetime | None = None
    last_error: str | None = None
    warnings: list[str] = []


class SourcePage(Record):
    items: list[SourceOut]
    cursor: str | None = None
