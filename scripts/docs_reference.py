"""mkdocs hook: the REST and NATS reference pages, generated at build time from the code's own documents.

`reference/rest-endpoints.md` (and `openapi.json` beside it) comes from the registry's OpenAPI document,
built from its Litestar app with no server or database, and `reference/nats.md` from
`docs/asyncapi.json` (`make asyncapi`).
Neither page is stored in `docs/`, so they cannot go stale.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

REST_PAGE = "reference/rest-endpoints.md"
NATS_PAGE = "reference/nats.md"
OPENAPI_FILE = "openapi.json"

Schema = Mapping[str, Any]


def on_files(files: Files, config: MkDocsConfig) -> Files:
    asyncapi = json.loads((Path(config.docs_dir) / "asyncapi.json").read_text())
    openapi = registry_openapi()
    files.append(File.generated(config, REST_PAGE, content=rest_page(openapi)))
    files.append(File.generated(config, OPENAPI_FILE, content=json.dumps(openapi, indent=2)))
    files.append(File.generated(config, NATS_PAGE, content=nats_page(asyncapi)))
    return files


def registry_openapi() -> dict[str, Any]:
    """The registry's OpenAPI document, exactly as `/schema/openapi.json` serves it."""
    from skillrelay_common.settings import Settings
    from skillrelay_registry.app import create_app

    # Building the app reads settings only; the throwaway secret never leaves this process.
    app = create_app(Settings(secret_key="docs-build-" + "x" * 32, admin_token="docs-build"))
    document: dict[str, Any] = app.openapi_schema.to_schema()
    return document


# --- REST ------------------------------------------------------------------------------------------


def rest_page(document: Schema) -> str:
    schemas: Mapping[str, Schema] = document.get("components", {}).get("schemas", {})
    lines = [
        "# REST endpoints",
        "",
        "Generated at build time from the registry's OpenAPI document ([`openapi.json`](../openapi.json); "
        "a running registry serves it at `/schema/openapi.json`, with Swagger UI at `/schema/swagger`). "
        "How the calls behave — "
        "authentication, validation, errors, paging, events — is in the [REST API](rest.md) guide.",
        "",
        'Every error answer is `{"code": "…", "message": "…"}` with the status listed there; '
        "the responses below are the ones the document declares.",
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, Schema]]] = {}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                tag = (operation.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append((method.upper(), path, operation))
    for tag, operations in by_tag.items():
        lines += [f"## {tag.capitalize()}", ""]
        for method, path, operation in operations:
            lines += _operation(method, path, operation)
    lines += ["## Schemas", ""]
    for name in sorted(schemas):
        lines += _schema_section(name, schemas[name])
    return "\n".join(lines) + "\n"


def _operation(method: str, path: str, operation: Schema) -> list[str]:
    lines = [f"### `{method} {path}`", ""]
    if summary := operation.get("description") or operation.get("summary"):
        lines += [_one_line(summary), ""]
    lines += [f"Authentication: {_security(operation.get('security'))}.", ""]
    parameters = operation.get("parameters") or []
    if parameters:
        lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for parameter in parameters:
            lines.append(
                _row(
                    f"`{parameter['name']}`",
                    parameter.get("in", ""),
                    _type(parameter.get("schema", {})),
                    _yes(parameter.get("required")),
                    _cell(parameter.get("description", "")),
                )
            )
        lines.append("")
    body = operation.get("requestBody", {}).get("content", {})
    for media_type, content in body.items():
        lines += [f"Body (`{media_type}`): {_type(content.get('schema', {}))}", ""]
    responses = operation.get("responses", {})
    if responses:
        lines += ["| status | answer |", "|---|---|"]
        for status, response in responses.items():
            if status[:1] in {"4", "5"}:
                # Litestar declares its own error shape here; the registry answers {code, message}.
                lines.append(_row(status, "an error: `{code, message}`"))
                continue
            answers = [
                f"{_type(content.get('schema', {}))} (`{media_type}`)"
                for media_type, content in response.get("content", {}).items()
            ]
            lines.append(_row(status, ", ".join(answers) or _cell(response.get("description", ""))))
        lines.append("")
    return lines


def _security(requirements: Iterable[Mapping[str, Any]] | None) -> str:
    names = [name for requirement in requirements or [] for name in requirement]
    labels = {"apiKey": "an owner's API key", "adminToken": "the admin token"}
    return " or ".join(labels.get(name, f"`{name}`") for name in names) or "none"


def _schema_section(name: str, schema: Schema) -> list[str]:
    lines = [f"### {name} {{#{_anchor(name)}}}", ""]
    if description := schema.get("description"):
        lines += [_one_line(description), ""]
    properties: Mapping[str, Schema] = schema.get("properties", {})
    if not properties:
        return [*lines, f"Type: {_type(schema, link=False)}", ""]
    required = set(schema.get("required", []))
    described = any(field_schema.get("description") for field_schema in properties.values())
    lines += ["| field | type | required |" + (" description |" if described else "")]
    lines += ["|---|---|---|" + ("---|" if described else "")]
    for field, field_schema in properties.items():
        cells = [f"`{field}`", _type(field_schema), _yes(field in required)]
        lines.append(_row(*cells, *([_cell(field_schema.get("description", ""))] if described else [])))
    return [*lines, ""]


def _anchor(name: str) -> str:
    return "schema-" + "".join(c if c.isalnum() else "-" for c in name).lower()


def _type(schema: Schema, *, link: bool = True) -> str:
    """A short, readable type: `string`, `array of Ability`, `Created`, `string or null`."""
    if ref := schema.get("$ref"):
        name = ref.rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})" if link else name
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            return " or ".join(_type(option, link=link) for option in schema[combinator])
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(_type({**schema, "type": one}, link=link) for one in kind)
    if kind == "array":
        return f"array of {_type(schema.get('items', {}), link=link)}"
    values = schema.get("additionalProperties")
    if kind == "object" and isinstance(values, Mapping) and values:
        return f"object of {_type(values, link=link)}"
    return f"`{kind}`" if kind else "any"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _yes(flag: object) -> str:
    return "yes" if flag else "no"


def _cell(text: str) -> str:
    return _one_line(text).replace("|", "\\|")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --- NATS ------------------------------------------------------------------------------------------


def nats_page(document: Schema) -> str:
    channels: Mapping[str, Schema] = document.get("channels", {})
    schemas: Mapping[str, Schema] = document.get("components", {}).get("schemas", {})
    messages: Mapping[str, Schema] = document.get("components", {}).get("messages", {})
    requests: list[str] = []
    published: list[str] = []
    for operation in document.get("operations", {}).values():
        channel = channels.get(_ref_name(operation.get("channel", {})), {})
        address = channel.get("address") or "?"
        sent = _payloads(channel, messages, schemas)
        description = _cell(operation.get("summary") or channel.get("description", ""))
        reply = operation.get("reply")
        if reply is not None and operation.get("x-answered-by"):
            answers = _payloads(channels.get(_ref_name(reply.get("channel", {})), {}), messages, schemas)
            mode = "broadcast, gathered" if operation.get("x-broadcast") else "queue group"
            requests.append(
                _row(f"`{address}`", f"{operation['x-answered-by']} ({mode})", sent, answers, description)
            )
        else:
            direction = "received" if operation.get("action") == "receive" else "published"
            if reply is not None:  # a NATS request outside the services' endpoints
                answered = _payloads(channels.get(_ref_name(reply.get("channel", {})), {}), messages, schemas)
                sent += f", answered with {answered}"
            published.append(_row(f"`{address}`", direction, sent, description))
    info = document.get("info", {})
    streams: Mapping[str, Schema] = info.get("x-jetstream-streams", {})
    lines = [
        "# NATS subjects",
        "",
        "Generated at build time from [`asyncapi.json`](../asyncapi.json) (AsyncAPI "
        f"{document.get('asyncapi', '3')}), which `make asyncapi` writes with FastStream from the "
        "services' subscribers and `libs/common/skillrelay_common/subjects.py`; a test fails when the "
        "committed file is stale. Messages are JSON (msgspec); a request's reply is a tagged union "
        "(field `kind`), and `Unavailable` stands for no answer in time.",
        "",
        "## Requests",
        "",
        "| subject | answered by | request | replies | what for |",
        "|---|---|---|---|---|",
        *sorted(requests),
        "",
        "## Events, audit and the worker protocol",
        "",
        "| subject | direction | messages | what for |",
        "|---|---|---|---|",
        *sorted(published),
        "",
    ]
    if streams:
        lines += ["## JetStream streams", "", "| stream | subjects | kept |", "|---|---|---|"]
        for name, stream in streams.items():
            subjects = ", ".join(f"`{subject}`" for subject in stream.get("subjects", []))
            lines.append(f"| `{name}` | {subjects} | {_age(stream.get('maxAgeSeconds'))} |")
        lines.append("")
    lines += ["## Messages", ""]
    for name in sorted(schemas):
        if _named_type(name):
            lines += _message_section(name, schemas[name])
    return "\n".join(lines) + "\n"


def _named_type(name: str) -> bool:
    """A message type's schema; FastStream names an unnamed payload ``<channel>:Message:Payload``."""
    return ":" not in name


def _payloads(channel: Schema, messages: Mapping[str, Schema], schemas: Mapping[str, Schema]) -> str:
    """The types a channel carries: each message type linked, an unnamed payload by its shape."""
    shown = []
    for ref in channel.get("messages", {}).values():
        payload = messages.get(_ref_name(ref), {}).get("payload", {})
        name = _ref_name(payload)
        if name and not _named_type(name):
            payload = schemas.get(name, {})
        options = payload.get("oneOf", [payload]) if "$ref" not in payload else [payload]
        shown += [_message_type(option) for option in options]
    return " \\| ".join(shown)


def _message_type(schema: Schema) -> str:
    """A payload's type, each named type linked to its section below."""
    if name := _ref_name(schema):
        return f"[{name}](#{_message_anchor(name)})"
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            return " or ".join(_message_type(option) for option in schema[combinator])
    if schema.get("type") == "array" and "items" in schema:
        return f"array of {_message_type(schema['items'])}"
    return _type(schema, link=False)


def _message_section(name: str, payload: Schema) -> list[str]:
    lines = [f"### {name} {{#{_message_anchor(name)}}}", ""]
    if summary := payload.get("description"):
        lines += [_one_line(summary), ""]
    properties: Mapping[str, Schema] = payload.get("properties", {})
    if not properties:
        return [*lines, f"Payload: {_type(payload, link=False)}", ""]
    required = set(payload.get("required", []))
    lines += ["| field | type | required |", "|---|---|---|"]
    for field, field_schema in properties.items():
        lines.append(_row(f"`{field}`", _message_type(field_schema), _yes(field in required)))
    return [*lines, ""]


def _message_anchor(name: str) -> str:
    return "message-" + "".join(c if c.isalnum() else "-" for c in name).lower()


def _ref_name(ref: Schema) -> str:
    """The last part of a JSON pointer (FastStream percent-encodes keys such as ``$SYS…``)."""
    return unquote(str(ref.get("$ref", "")).rsplit("/", 1)[-1]).replace("~1", "/").replace("~0", "~")


def _age(seconds: int | None) -> str:
    if not seconds:
        return "unbounded"
    if seconds % 86400 == 0:
        return f"{seconds // 86400} days"
    return f"{seconds // 60} minutes" if seconds % 60 == 0 else f"{seconds} s"
