"""How abilities, resources and prompts are defined: shared by the registry (REST, camelCase) and the
edge (execution). These structs are user-facing, so they use camelCase field names on the wire."""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class _Handler(
    msgspec.Struct,
    kw_only=True,
    omit_defaults=True,
    rename="camel",
    tag_field="type",
    forbid_unknown_fields=True,
):
    pass


class StaticHandler(_Handler, tag="static"):
    """Fixed content blocks; text may hold ``{{argument}}`` placeholders (plain substitution, no code)."""

    content: list[dict[str, Any]]
    is_error: bool = False
    structured_content: dict[str, Any] | None = None


class HttpHandler(_Handler, tag="http"):
    """Sends the arguments as JSON to ``url`` and maps the answer to content."""

    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    timeout_ms: int = 10_000


class WorkerHandler(_Handler, tag="worker"):
    """Served by a worker process (worker SDK) listening on NATS subject ``worker.<subject>``."""

    subject: str
    timeout_ms: int = 30_000
    # Tasks extension of 2026-07-28 (tools only): "optional" lets the handler go on as a task
    # (``ctx.start_task()``) for a client that declared the extension; "required" also refuses a
    # 2026-07-28 client that did not (-32021). 2025 sessions always run the call to its end.
    task_support: Literal["forbidden", "optional", "required"] = "forbidden"


Handler = StaticHandler | HttpHandler | WorkerHandler
# Resources and prompts with dynamic content may only use these two.
DynamicHandler = HttpHandler | WorkerHandler


class McpSourceHandler(_Handler, tag="mcp"):
    """Forwarded to the upstream MCP server of skillset source ``source_id``. ``name`` is the upstream's
    own name of the tool or prompt (for a resource: its URI or URI template), before any prefix.
    Only the registry writes these (from a source's listings); REST never accepts them."""

    source_id: str
    name: str


class OpenApiParameter(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """Where one tool argument of an OpenAPI operation goes: the URL path, the query or a header."""

    name: str
    location: Literal["path", "query", "header"]


class OpenApiHandler(_Handler, tag="openapi"):
    """Calls one operation of skillset source ``source_id`` (an OpenAPI document): ``method`` on the
    source's ``baseUrl`` + ``path`` (``{name}`` segments filled from the arguments), ``parameters`` say
    where each other argument goes, and the ``body`` argument (when ``has_body``) is sent as JSON.
    Only the registry writes these (from the document); REST never accepts them."""

    source_id: str
    operation_id: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    parameters: list[OpenApiParameter] = msgspec.field(default_factory=list)
    has_body: bool = False


# Handlers of the abilities, resources and prompts a skillset source brings (never created through REST).
SourceHandler = McpSourceHandler | OpenApiHandler


class AbilityDef(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """An MCP tool."""

    id: str
    name: str
    description: str = ""
    title: str | None = None
    input_schema: dict[str, Any] = msgspec.field(default_factory=lambda: {"type": "object"})
    output_schema: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None
    handler: Handler | SourceHandler
    meta: dict[str, Any] = msgspec.field(default_factory=dict)


class ResourceDef(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """An MCP resource: static (``uri`` + ``text`` or base64 ``blob``) or templated
    (``uriTemplate`` + handler)."""

    id: str
    name: str
    uri: str | None = None
    uri_template: str | None = None
    title: str | None = None
    description: str = ""
    mime_type: str | None = None
    text: str | None = None
    blob: str | None = None
    handler: DynamicHandler | SourceHandler | None = None
    annotations: dict[str, Any] | None = None
    size: int | None = None
    meta: dict[str, Any] = msgspec.field(default_factory=dict)


class PromptArgument(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    name: str
    description: str = ""
    required: bool = False


class PromptMessage(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    role: Literal["user", "assistant"]
    content: dict[str, Any]


class PromptDef(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """An MCP prompt: ``messages`` with ``{{argument}}`` substitution, or a worker/http handler."""

    id: str
    name: str
    title: str | None = None
    description: str = ""
    arguments: list[PromptArgument] = msgspec.field(default_factory=list)
    messages: list[PromptMessage] = msgspec.field(default_factory=list)
    handler: DynamicHandler | SourceHandler | None = None
    meta: dict[str, Any] = msgspec.field(default_factory=dict)


class SourceDef(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """A skillset source as the edge needs it to forward calls: an upstream MCP server (``url``) or an
    OpenAPI document's server (``base_url``). ``headers`` are decrypted: a snapshot travels only on
    services' subjects and is never logged or returned by REST."""

    id: str
    type: Literal["mcp", "openapi"]
    name: str = ""
    url: str | None = None
    base_url: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    timeout_ms: int = 30_000
