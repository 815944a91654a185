"""The "Try it" panel of an MCP server's page: pick a tool, resource or prompt of its skillset, fill the
form made from its schema, and send it through the real edge with a token the owner pastes (see
``try_client``; the token is never stored or shown back)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from litestar import Request, Response, post
from litestar.params import FromPath

from skillrelay_registry.api.common import OwnerId, Service
from skillrelay_registry.dashboard.try_client import TryOutcome, try_request
from skillrelay_registry.dashboard.try_form import (
    ArgInput,
    Target,
    prompt_inputs,
    read_arguments,
    schema_inputs,
)
from skillrelay_registry.dashboard.views_skillsets import LIST_ALL
from skillrelay_registry.kinds import ABILITY, PROMPT, RESOURCE

TOKEN_FIELD = "accessToken"


@dataclass
class TryPanel:
    targets: list[tuple[str, list[tuple[str, str]]]]  # (group label, [(value, label)])
    target: Target | None
    inputs: list[ArgInput]
    description: str = ""
    outcome: TryOutcome | None = None
    problems: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class _Catalog:
    tools: dict[str, dict[str, Any]]
    resources: dict[str, dict[str, Any]]  # by uri or uriTemplate
    prompts: dict[str, dict[str, Any]]


async def _catalog(service: Service, owner_id: str, skillset_id: str) -> _Catalog:
    abilities = (await service.list_content(ABILITY, owner_id, skillset_id, LIST_ALL)).items
    resources = (await service.list_content(RESOURCE, owner_id, skillset_id, LIST_ALL)).items
    prompts = (await service.list_content(PROMPT, owner_id, skillset_id, LIST_ALL)).items
    return _Catalog(
        tools={a.name: {"description": a.description, "inputSchema": a.input_schema} for a in abilities},
        resources={
            (r.uri or r.uri_template or ""): {"name": r.name, "template": r.uri_template is not None}
            for r in resources
        },
        prompts={p.name: {"description": p.description, "arguments": p.arguments} for p in prompts},
    )


def _inputs(catalog: _Catalog, target: Target) -> tuple[list[ArgInput], str] | None:
    if target.kind == "tool" and target.name in catalog.tools:
        tool = catalog.tools[target.name]
        return schema_inputs(tool["inputSchema"]), tool["description"]
    if target.kind == "prompt" and target.name in catalog.prompts:
        prompt = catalog.prompts[target.name]
        return prompt_inputs(prompt["arguments"]), prompt["description"]
    if target.kind == "resource" and target.name in catalog.resources:
        resource = catalog.resources[target.name]
        if resource["template"]:
            hint = f"a URI matching {target.name}"
            return [ArgInput(name="uri", kind="text", required=True, hint=hint)], resource["name"]
        return [], resource["name"]
    return None


async def try_panel(
    service: Service,
    owner_id: str,
    skillset_id: str,
    chosen: str | None,
    *,
    form: dict[str, Any] | None = None,
) -> TryPanel:
    catalog = await _catalog(service, owner_id, skillset_id)
    targets = [
        ("Tools", [(Target("tool", name).value, name) for name in catalog.tools]),
        (
            "Resources",
            [(Target("resource", uri).value, f"{r['name']} ({uri})") for uri, r in catalog.resources.items()],
        ),
        ("Prompts", [(Target("prompt", name).value, name) for name in catalog.prompts]),
    ]
    target = Target.parse(chosen)
    found = _inputs(catalog, target) if target is not None else None
    if found is None:  # nothing (or something unknown) chosen: the first there is
        first = next((value for _, options in targets for value, _ in options), None)
        target = Target.parse(first)
        found = _inputs(catalog, target) if target is not None else None
    inputs, description = found or ([], "")
    values = {k: v for k, v in (form or {}).items() if isinstance(v, str) and k.startswith("arg.")}
    return TryPanel(targets, target, inputs, description, values=values)


def _request_of(target: Target, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if target.kind == "tool":
        return "tools/call", {"name": target.name, "arguments": arguments}
    if target.kind == "prompt":
        return "prompts/get", {"name": target.name, "arguments": {k: str(v) for k, v in arguments.items()}}
    return "resources/read", {"uri": str(arguments.get("uri") or target.name)}


class PageRenderer(Protocol):
    async def __call__(
        self,
        request: Request[Any, Any, Any],
        service: Service,
        owner_id: str,
        integration_id: str,
        *,
        try_panel: TryPanel | None = None,
        status_code: int | None = None,
    ) -> Response[str]: ...


def try_handler(render_page: PageRenderer) -> Any:
    """``POST /integrations/{id}/try``; ``render_page(request, service, owner_id, integration_id,
    try_panel=…)`` renders the server's page with the outcome in its panel."""

    @post("/integrations/{integration_id:str}/try")
    async def try_it(
        request: Request[Any, Any, Any], service: Service, owner_id: OwnerId, integration_id: FromPath[str]
    ) -> Response[str]:
        integration = await service.get_integration(owner_id, integration_id)
        form = dict((await request.form()).items())
        token = form.pop(TOKEN_FIELD, "")
        panel = await try_panel(service, owner_id, integration.skillset_id, form.get("target"), form=form)
        arguments, panel.problems = read_arguments(panel.inputs, form)
        if panel.target is None:
            panel.problems["target"] = "this MCP server's skillset has nothing to try yet"
        elif not isinstance(token, str) or not token.strip():
            panel.problems[TOKEN_FIELD] = "paste the MCP server's access token (it is not kept)"
        elif integration.o_auth_connection_id:
            panel.problems[TOKEN_FIELD] = (
                "an OAuth-gated server also needs a user's sign-in: try it from a client"
            )
        elif not panel.problems:
            method, params = _request_of(panel.target, arguments)
            panel.outcome = await try_request(integration.endpoint, token.strip(), method, params)
        return await render_page(
            request,
            service,
            owner_id,
            integration_id,
            try_panel=panel,
            status_code=422 if panel.problems else 200,
        )

    return try_it


@dataclass(frozen=True)
class Shown:
    """One piece of an answer as the panel shows it: text, an image (data URL) or JSON."""

    kind: str
    text: str
    label: str = ""


def shown_blocks(result: dict[str, Any] | None) -> list[Shown]:
    """The content of a tools/call, prompts/get or resources/read result, in order."""
    if result is None:
        return []
    blocks: list[tuple[str, Any]] = [("", block) for block in result.get("content") or []]
    blocks += [
        (str(m.get("role", "")), m.get("content"))
        for m in result.get("messages") or []
        if isinstance(m, dict)
    ]
    blocks += [("", {"type": "resource", "resource": c}) for c in result.get("contents") or []]
    shown = [_shown(label, block) for label, block in blocks if isinstance(block, dict)]
    if isinstance(result.get("structuredContent"), dict):
        shown.append(Shown("json", json.dumps(result["structuredContent"], indent=2), "structuredContent"))
    return shown


def _shown(label: str, block: dict[str, Any]) -> Shown:
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return Shown("text", block["text"], label)
    if (
        kind == "image"
        and isinstance(block.get("data"), str)
        and str(block.get("mimeType", "")).startswith("image/")
    ):
        return Shown("image", f"data:{block['mimeType']};base64,{block['data']}", label)
    resource = block.get("resource")
    if kind == "resource" and isinstance(resource, dict) and isinstance(resource.get("text"), str):
        return Shown(
            "text", resource["text"], " ".join(x for x in (label, str(resource.get("uri", ""))) if x)
        )
    return Shown("json", json.dumps(block, indent=2), label)
