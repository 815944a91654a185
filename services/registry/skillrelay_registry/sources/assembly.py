"""A skillset source's catalog as the skillset exposes it: each upstream tool, resource, resource
template and prompt becomes an ability, resource or prompt of the skillset snapshot whose handler
forwards to the source (``mcp``) or calls its OpenAPI operation (``openapi``).

Names take the source's prefix; ``include`` (when given) keeps only matching upstream names, ``exclude``
drops matching ones (shell-style patterns; resources match by name or URI). The skillset's own
abilities, resources and prompts come first, then sources in creation order: an item whose exposed
name (or URI) is already taken is left out, as is a tool whose prefixed name is not a valid tool name.
What a clash leaves out is reported in the source's ``warnings`` (``clashes``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import msgspec

from skillrelay_common.schemas.abilities import (
    AbilityDef,
    McpSourceHandler,
    OpenApiHandler,
    OpenApiParameter,
    PromptArgument,
    PromptDef,
    ResourceDef,
    SourceDef,
)
from skillrelay_common.schemas.registry import SkillsetSnapshot
from skillrelay_registry.models import Source
from skillrelay_registry.sources.openapi import OPERATION_KEY

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
HeadersOf = Callable[[Source], dict[str, str]]


@dataclass
class SourceItems:
    abilities: list[AbilityDef] = field(default_factory=list)
    resources: list[ResourceDef] = field(default_factory=list)
    prompts: list[PromptDef] = field(default_factory=list)


def with_sources(
    snapshot: SkillsetSnapshot, sources: Iterable[Source], headers_of: HeadersOf
) -> SkillsetSnapshot:
    """``snapshot`` (the skillset's own contents) with every source's items and ``SourceDef`` added."""
    _merge(snapshot, sources, headers_of)
    return snapshot


def clashes(snapshot: SkillsetSnapshot, sources: Iterable[Source]) -> dict[str, list[str]]:
    """Per source id, what it brings that is left out because the name (or URI) is already taken,
    each with who took it: the source's warnings (``snapshot``, the skillset's own contents, grows)."""
    return _merge(snapshot, sources, lambda source: {})


_OWN = "the skillset's own {}"


def _merge(
    snapshot: SkillsetSnapshot, sources: Iterable[Source], headers_of: HeadersOf
) -> dict[str, list[str]]:
    """Add every source's items that are not taken yet; returns what was left out, per source id."""
    # Exposed name (or URI) -> who brings it.
    tools = {ability.name: _OWN.format("ability") for ability in snapshot.abilities}
    uris = {
        resource.uri or resource.uri_template or "": _OWN.format("resource")
        for resource in snapshot.resources
    }
    prompts = {prompt.name: _OWN.format("prompt") for prompt in snapshot.prompts}
    left_out: dict[str, list[str]] = {}
    for source in sources:
        items = source_items(source)
        owner = f"source {source.name!r} ({source.id})"
        notes = left_out.setdefault(source.id, [])
        for ability in items.abilities:
            if _claim(tools, ability.name, owner, "tool", notes):
                snapshot.abilities.append(ability)
        for resource in items.resources:
            if _claim(uris, resource.uri or resource.uri_template or "", owner, "resource", notes):
                snapshot.resources.append(resource)
        for prompt in items.prompts:
            if _claim(prompts, prompt.name, owner, "prompt", notes):
                snapshot.prompts.append(prompt)
        snapshot.sources.append(source_def(source, headers_of(source)))
    return left_out


def _claim(taken: dict[str, str], name: str, owner: str, kind: str, notes: list[str]) -> bool:
    """Whether ``owner`` gets ``name``; when another has it, a note says the item is left out."""
    holder = taken.get(name)
    if holder is None:
        taken[name] = owner
        return True
    if holder != owner:
        notes.append(f"{kind} {name!r} left out: {holder} already exposes it")
    return False


def source_def(source: Source, headers: dict[str, str]) -> SourceDef:
    base_url = source.base_url or source.catalog.get("baseUrl")
    return SourceDef(
        id=source.id,
        type="openapi" if source.type == "openapi" else "mcp",
        name=source.name,
        url=source.url if source.type == "mcp" else None,
        base_url=base_url if isinstance(base_url, str) else None,
        headers=headers,
        timeout_ms=source.timeout_ms,
    )


def source_items(source: Source) -> SourceItems:
    """What one source brings, named and filtered, before any clash with other items is settled."""
    items = SourceItems()
    catalog = source.catalog
    for tool in _dicts(catalog.get("tools")):
        upstream = tool.get("name")
        if not isinstance(upstream, str) or not _selected(source, upstream):
            continue
        name = source.prefix + upstream
        ability = _ability(source, tool, upstream, name) if _TOOL_NAME.fullmatch(name) else None
        if ability is not None:
            items.abilities.append(ability)
    for kind in ("resources", "resourceTemplates"):
        uri_key = "uri" if kind == "resources" else "uriTemplate"
        for resource in _dicts(catalog.get(kind)):
            uri, label = resource.get(uri_key), resource.get("name")
            if not isinstance(uri, str) or not isinstance(label, str):
                continue
            if _selected(source, label, uri):
                items.resources.append(_resource(source, resource, uri_key, uri, label))
    for prompt in _dicts(catalog.get("prompts")):
        upstream = prompt.get("name")
        if isinstance(upstream, str) and _selected(source, upstream):
            converted = _prompt(source, prompt, upstream)
            if converted is not None:
                items.prompts.append(converted)
    return items


def exposed_names(source: Source) -> tuple[list[str], list[str], list[str]]:
    """Tool names, resource URIs (and templates) and prompt names the source brings (for REST)."""
    items = source_items(source)
    return (
        [ability.name for ability in items.abilities],
        [resource.uri or resource.uri_template or "" for resource in items.resources],
        [prompt.name for prompt in items.prompts],
    )


def _selected(source: Source, *names: str) -> bool:
    """Whether an item known by ``names`` (a resource: its name and URI) passes include and exclude."""

    def matches(patterns: list[Any]) -> bool:
        return any(fnmatchcase(name, str(pattern)) for name in names for pattern in patterns)

    return (not source.include or matches(source.include)) and not matches(source.exclude)


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _object_schema(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) and value.get("type") == "object" else None


def _ability(source: Source, tool: dict[str, Any], upstream: str, name: str) -> AbilityDef | None:
    handler: McpSourceHandler | OpenApiHandler
    operation = tool.get(OPERATION_KEY)
    if source.type == "openapi":
        if not isinstance(operation, dict):
            return None
        handler = OpenApiHandler(
            source_id=source.id,
            operation_id=_text(operation.get("operationId")) or upstream,
            method=operation["method"],
            path=operation["path"],
            parameters=msgspec.convert(operation.get("parameters", []), list[OpenApiParameter]),
            has_body=bool(operation.get("hasBody")),
        )
    else:
        handler = McpSourceHandler(source_id=source.id, name=upstream)
    annotations = tool.get("annotations")
    return AbilityDef(
        id=f"{source.id}:{upstream}",
        name=name,
        description=_text(tool.get("description")),
        title=tool.get("title") if isinstance(tool.get("title"), str) else None,
        input_schema=_object_schema(tool.get("inputSchema")) or {"type": "object"},
        output_schema=_object_schema(tool.get("outputSchema")),
        annotations=annotations if isinstance(annotations, dict) else None,
        handler=handler,
        meta={"source": source.id},
    )


def _resource(source: Source, resource: dict[str, Any], uri_key: str, uri: str, name: str) -> ResourceDef:
    annotations = resource.get("annotations")
    size = resource.get("size")
    return ResourceDef(
        id=f"{source.id}:{uri}",
        name=source.prefix + name,
        uri=uri if uri_key == "uri" else None,
        uri_template=uri if uri_key == "uriTemplate" else None,
        title=resource.get("title") if isinstance(resource.get("title"), str) else None,
        description=_text(resource.get("description")),
        mime_type=resource.get("mimeType") if isinstance(resource.get("mimeType"), str) else None,
        handler=McpSourceHandler(source_id=source.id, name=uri),
        annotations=annotations if isinstance(annotations, dict) else None,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        meta={"source": source.id},
    )


def _prompt(source: Source, prompt: dict[str, Any], upstream: str) -> PromptDef | None:
    try:
        arguments = msgspec.convert(
            [
                {key: value for key, value in argument.items() if key in ("name", "description", "required")}
                for argument in _dicts(prompt.get("arguments"))
            ],
            list[PromptArgument],
        )
    except msgspec.ValidationError:
        return None
    return PromptDef(
        id=f"{source.id}:{upstream}",
        name=source.prefix + upstream,
        title=prompt.get("title") if isinstance(prompt.get("title"), str) else None,
        description=_text(prompt.get("description")),
        arguments=arguments,
        handler=McpSourceHandler(source_id=source.id, name=upstream),
        meta={"source": source.id},
    )
