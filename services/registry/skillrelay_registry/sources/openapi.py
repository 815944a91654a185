"""An OpenAPI 3.0/3.1 document as tools: one per operation, named by its ``operationId``, the input
schema made of its parameters (and a ``body`` argument for a JSON request body), the output schema from
its JSON success answer. Each tool carries how to call it (``x-skillrelay-operation``), which becomes
the tool's ``openapi`` handler in the skillset snapshot.

Only local references (``#/components/...``) are followed; a reference to itself (a recursive schema)
becomes an unconstrained schema past the first level, as does an external one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Key under which a tool of the catalog keeps how to call its operation (never shown to MCP clients).
OPERATION_KEY = "x-skillrelay-operation"
MAX_OPERATIONS = 1000
_METHODS = ("get", "post", "put", "patch", "delete")
_LOCATIONS = ("path", "query", "header")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.\-]")
_MAX_REF_DEPTH = 24
# Schema keywords holding a map of schemas, one schema, a list of schemas; keywords OpenAPI adds.
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SCHEMA_ONES = ("items", "additionalProperties", "not", "contains")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_OPENAPI_ONLY = ("nullable", "discriminator", "xml", "externalDocs", "example")


class DocumentInvalid(ValueError):
    """The document is not an OpenAPI 3.0/3.1 document we can read (message safe to show)."""


def read_tools(document: Any) -> list[dict[str, Any]]:
    """The document's operations as MCP tool definitions (plus ``x-skillrelay-operation``)."""
    if not isinstance(document, Mapping):
        raise DocumentInvalid("the OpenAPI document must be a JSON object")
    version = document.get("openapi")
    if not isinstance(version, str) or not version.startswith(("3.0", "3.1")):
        raise DocumentInvalid("only OpenAPI 3.0 and 3.1 documents are supported (the 'openapi' field)")
    paths = document.get("paths")
    if not isinstance(paths, Mapping):
        raise DocumentInvalid("the OpenAPI document has no 'paths' object")
    resolver = _Resolver(document)
    tools: list[dict[str, Any]] = []
    names: set[str] = set()
    for path, item in paths.items():
        if not isinstance(path, str) or not path.startswith("/") or not isinstance(item, Mapping):
            continue
        item = resolver.follow(item)
        for method in _METHODS:
            operation = item.get(method)
            if not isinstance(operation, Mapping):
                continue
            tool = _tool(resolver, path, method, item, operation)
            if tool is None or tool["name"] in names:
                continue
            names.add(tool["name"])
            tools.append(tool)
            if len(tools) > MAX_OPERATIONS:
                raise DocumentInvalid(f"the document has more than {MAX_OPERATIONS} operations")
    return tools


def server_url(document: Mapping[str, Any]) -> str | None:
    """The first absolute ``servers[].url`` of the document, if any (``baseUrl`` may be left out then)."""
    servers = document.get("servers")
    if isinstance(servers, list):
        for server in servers:
            url = server.get("url") if isinstance(server, Mapping) else None
            if isinstance(url, str) and url.startswith(("http://", "https://")) and "{" not in url:
                return url.rstrip("/")
    return None


def _tool(
    resolver: _Resolver, path: str, method: str, item: Mapping[str, Any], operation: Mapping[str, Any]
) -> dict[str, Any] | None:
    """One operation as a tool, or None when it cannot be called (a non-JSON request body)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    parameters: list[dict[str, str]] = []
    for parameter in _parameters(resolver, item, operation):
        name, location = parameter["name"], parameter["in"]
        schema = resolver.schema(parameter.get("schema", {}))
        if isinstance(parameter.get("description"), str) and "description" not in schema:
            schema = {**schema, "description": parameter["description"]}
        properties[name] = schema
        parameters.append({"name": name, "location": location})
        if location == "path" or parameter.get("required") is True:
            required.append(name)
    has_body = False
    body = resolver.follow(operation.get("requestBody") or {})
    if body:
        body_schema = _json_schema_of(resolver, body.get("content"))
        if body_schema is None:
            return None  # only JSON request bodies can be sent
        if "body" in properties:
            return None  # a parameter named "body" would clash with the body argument
        properties["body"] = body_schema
        has_body = True
        if body.get("required") is True:
            required.append("body")
    input_schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        input_schema["required"] = required
    tool: dict[str, Any] = {
        "name": _name(operation.get("operationId"), method, path),
        "description": _description(operation),
        "inputSchema": input_schema,
        OPERATION_KEY: {
            "method": method.upper(),
            "path": path,
            "parameters": parameters,
            "hasBody": has_body,
            "operationId": str(operation.get("operationId") or ""),
        },
    }
    output = _output_schema(resolver, operation.get("responses"))
    if output is not None:
        tool["outputSchema"] = output
    if method == "get":
        tool["annotations"] = {"readOnlyHint": True}
    elif method == "delete":
        tool["annotations"] = {"destructiveHint": True}
    return tool


def _parameters(
    resolver: _Resolver, item: Mapping[str, Any], operation: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """The path item's parameters overridden by the operation's (same name and location)."""
    merged: dict[tuple[str, str], Mapping[str, Any]] = {}
    for source in (item.get("parameters"), operation.get("parameters")):
        for raw in source if isinstance(source, list) else []:
            parameter = resolver.follow(raw)
            name, location = parameter.get("name"), parameter.get("in")
            if isinstance(name, str) and name and location in _LOCATIONS:
                merged[(name, location)] = parameter  # cookie parameters are not sent
    return list(merged.values())


def _json_schema_of(resolver: _Resolver, content: Any) -> dict[str, Any] | None:
    if not isinstance(content, Mapping):
        return None
    for media, entry in content.items():
        media_type = str(media).split(";", 1)[0].strip().lower()
        if media_type == "application/json" or media_type.endswith("+json"):
            entry = resolver.follow(entry) if isinstance(entry, Mapping) else {}
            return resolver.schema(entry.get("schema", {}))
    return None


def _output_schema(resolver: _Resolver, responses: Any) -> dict[str, Any] | None:
    """The JSON schema of the first success answer, when it is an object (MCP's outputSchema must be)."""
    if not isinstance(responses, Mapping):
        return None
    for status in sorted(str(key) for key in responses):
        if not (status.startswith("2") and len(status) == 3):
            continue
        response = resolver.follow(responses.get(status))
        schema = _json_schema_of(resolver, response.get("content"))
        if schema is not None and (schema.get("type") == "object" or "properties" in schema):
            return {**schema, "type": "object"}
        return None
    return None


def _name(operation_id: Any, method: str, path: str) -> str:
    raw = operation_id if isinstance(operation_id, str) and operation_id else f"{method}_{path}"
    name = _NOT_NAME.sub("_", raw).strip("_") or method
    return name[:128]


def _description(operation: Mapping[str, Any]) -> str:
    parts = [operation.get("summary"), operation.get("description")]
    return "\n\n".join(part for part in parts if isinstance(part, str) and part)


class _Resolver:
    """Follows ``$ref`` within the document and turns OpenAPI schemas into plain JSON Schemas."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document

    def follow(self, value: Any) -> Mapping[str, Any]:
        """A parameter, request body or response object with its reference followed."""
        for _ in range(_MAX_REF_DEPTH):
            if not isinstance(value, Mapping):
                return {}
            ref = value.get("$ref")
            if not isinstance(ref, str):
                return value
            value = self._lookup(ref)
        return {}

    def schema(self, value: Any, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        """A schema with every local reference inlined (a cycle or a depth past the bound: ``{}``)."""
        if not isinstance(value, Mapping) or len(seen) > _MAX_REF_DEPTH:
            return {}
        ref = value.get("$ref")
        if isinstance(ref, str):
            if ref in seen:
                return {}
            return self.schema(self._lookup(ref), (*seen, ref))
        schema: dict[str, Any] = {}
        for key, item in value.items():
            if key in _SCHEMA_MAPS and isinstance(item, Mapping):
                schema[key] = {name: self.schema(sub, seen) for name, sub in item.items()}
            elif key in _SCHEMA_ONES and isinstance(item, Mapping):
                schema[key] = self.schema(item, seen)
            elif key in _SCHEMA_LISTS and isinstance(item, list):
                schema[key] = [self.schema(sub, seen) for sub in item]
            elif key not in _OPENAPI_ONLY:
                schema[key] = item
        if value.get("nullable") is True and isinstance(schema.get("type"), str):
            schema["type"] = [schema["type"], "null"]  # OpenAPI 3.0's nullable, as JSON Schema says it
        return schema

    def _lookup(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            return {}  # external documents are not fetched
        node: Any = self.document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                return {}
            node = node[part]
        return node
