"""What one integration serves, precomputed once per snapshot: the list pages, lookups by name/URI,
compiled URI templates and (lazily) argument validators. Built when a snapshot enters the cache so the
hot path only does dictionary lookups."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

from skillrelay_common.schemas.abilities import AbilityDef, PromptDef, ResourceDef, SourceDef
from skillrelay_common.schemas.registry import IntegrationInfo, IntegrationSnapshot
from skillrelay_edge.integrations.fast_schema import compile_fast_check

_UNCOMPILED = object()


@dataclass(frozen=True, slots=True)
class UriTemplate:
    """RFC 6570 level 1-2 subset: ``{var}`` matches one path segment, ``{+var}`` anything."""

    resource: ResourceDef
    pattern: re.Pattern[str]

    def match(self, uri: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(uri)
        return found.groupdict() if found else None


def compile_template(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    position = 0
    for found in re.finditer(r"\{([+#]?)([A-Za-z0-9_]+)\}", template):
        parts.append(re.escape(template[position : found.start()]))
        operator, name = found.group(1), found.group(2)
        parts.append(f"(?P<{name}>.+)" if operator else f"(?P<{name}>[^/?#]+)")
        position = found.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts))


def _tool_entry(ability: AbilityDef) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": ability.name,
        "description": ability.description,
        "inputSchema": ability.input_schema,
    }
    if ability.title:
        entry["title"] = ability.title
    if ability.output_schema is not None:
        entry["outputSchema"] = ability.output_schema
    if ability.annotations:
        entry["annotations"] = ability.annotations
    return entry


def _resource_entry(resource: ResourceDef, uri_key: str, uri: str) -> dict[str, Any]:
    entry: dict[str, Any] = {uri_key: uri, "name": resource.name}
    if resource.title:
        entry["title"] = resource.title
    if resource.description:
        entry["description"] = resource.description
    if resource.mime_type:
        entry["mimeType"] = resource.mime_type
    if resource.annotations:
        entry["annotations"] = resource.annotations
    if resource.size is not None and uri_key == "uri":
        entry["size"] = resource.size
    return entry


def _prompt_entry(prompt: PromptDef) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": prompt.name, "description": prompt.description}
    if prompt.title:
        entry["title"] = prompt.title
    if prompt.arguments:
        entry["arguments"] = [
            {"name": a.name, "description": a.description, "required": a.required} for a in prompt.arguments
        ]
    return entry


@dataclass
class Catalog:
    integration: IntegrationInfo
    snapshot: IntegrationSnapshot
    tools: dict[str, AbilityDef]
    tool_entries: list[dict[str, Any]]
    resources: dict[str, ResourceDef]
    resource_entries: list[dict[str, Any]]
    templates: list[UriTemplate]
    template_entries: list[dict[str, Any]]
    prompts: dict[str, PromptDef]
    prompt_entries: list[dict[str, Any]]
    # The skillset's sources by id: where abilities, resources and prompts with a source handler go.
    sources: dict[str, SourceDef] = field(default_factory=dict)
    _validators: dict[str, Any] = field(default_factory=dict)
    _fast_checks: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, snapshot: IntegrationSnapshot) -> Catalog:
        skillset = snapshot.skillset
        static_resources = [r for r in skillset.resources if r.uri and not r.uri_template]
        templated = [r for r in skillset.resources if r.uri_template]
        return cls(
            integration=snapshot.integration,
            snapshot=snapshot,
            tools={a.name: a for a in skillset.abilities},
            tool_entries=[_tool_entry(a) for a in skillset.abilities],
            resources={r.uri: r for r in static_resources if r.uri},
            resource_entries=[_resource_entry(r, "uri", r.uri or "") for r in static_resources],
            templates=[UriTemplate(r, compile_template(r.uri_template or "")) for r in templated],
            template_entries=[_resource_entry(r, "uriTemplate", r.uri_template or "") for r in templated],
            prompts={p.name: p for p in skillset.prompts},
            prompt_entries=[_prompt_entry(p) for p in skillset.prompts],
            sources={source.id: source for source in skillset.sources},
        )

    def source_of_request(self, method: str, params: dict[str, Any]) -> str | None:
        """The source id a request is forwarded to (for audit records), None when it is served here."""
        if not self.sources:
            return None
        target: Any = None
        if method == "tools/call":
            target = self.tools.get(str(params.get("name", "")))
        elif method == "prompts/get":
            target = self.prompts.get(str(params.get("name", "")))
        elif method == "resources/read":
            uri = str(params.get("uri", ""))
            found = self.resources.get(uri) or self.find_template(uri)
            target = found[0] if isinstance(found, tuple) else found
        source = self.source_of(target)
        return source.id if source is not None else None

    def source_of(self, target: Any) -> SourceDef | None:
        """The source an ability, resource or prompt forwards to (None for one of the skillset's own)."""
        source_id = getattr(getattr(target, "handler", None), "source_id", None)
        return self.sources.get(source_id) if isinstance(source_id, str) else None

    def find_template(self, uri: str) -> tuple[ResourceDef, dict[str, str]] | None:
        for template in self.templates:
            variables = template.match(uri)
            if variables is not None:
                return template.resource, variables
        return None

    def validate_arguments(self, tool: AbilityDef, arguments: dict[str, Any]) -> str | None:
        """None when ``arguments`` satisfy the tool's inputSchema, else a message for the client."""
        fast = self._fast_checks.get(tool.name, _UNCOMPILED)
        if fast is _UNCOMPILED:
            fast = self._fast_checks[tool.name] = compile_fast_check(tool.input_schema)
        if fast is not None and fast(arguments):
            return None
        validator: Any = self._validators.get(tool.name)
        if validator is None:
            try:
                validator_class = jsonschema.validators.validator_for(
                    tool.input_schema, default=jsonschema.Draft202012Validator
                )
                validator = validator_class(tool.input_schema)
            except (jsonschema.exceptions.SchemaError, TypeError):
                validator = False
            self._validators[tool.name] = validator
        if validator is False or validator is None:
            return None  # an unusable schema is the owner's problem, not the caller's
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        if not errors:
            return None
        described = []
        for err in errors[:5]:
            where = "/".join(str(p) for p in err.absolute_path)
            described.append(f"{where or '(root)'}: {err.message}")
        return "Invalid arguments for tool " + tool.name + ": " + "; ".join(described)
