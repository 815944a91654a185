"""Rules a skillset's contents must follow before they are stored. Pure functions: each raises
``InvalidInput`` with a message a user can act on, naming the offending field."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

from skillrelay_common.schemas.abilities import HttpHandler, StaticHandler, WorkerHandler
from skillrelay_common.uris import has_only_uri_characters, is_absolute_uri
from skillrelay_registry.errors import InvalidInput

# MCP 2025-11-25 "Tool names": 1-128 characters of A-Z a-z 0-9 _ - . (case-sensitive).
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_NATS_TOKEN = re.compile(r"^[A-Za-z0-9_\-]+$")
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")
# RFC 6570: the characters a template may hold outside expressions.
_TEMPLATE_LITERAL = re.compile(r"^(?:[^\x00-\x20\"'%<>\\^`{|}\x7f]|%[0-9A-Fa-f]{2})*$")
_VARNAME = re.compile(r"^(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})(?:\.?(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2}))*$")
_TEMPLATE_OPERATORS = "+#./;?&"
_RESERVED_OPERATORS = "=,!@|"
MAX_NAME_LENGTH = 256
MAX_TIMEOUT_MS = 300_000

# JSON Schema dialects a tool schema may declare; without "$schema" it is 2020-12 (MCP 2025-11-25).
_KNOWN_DIALECTS = {
    validator.META_SCHEMA.get("$id", validator.META_SCHEMA.get("id", "")).rstrip("#"): validator
    for validator in (
        jsonschema.Draft202012Validator,
        jsonschema.Draft201909Validator,
        jsonschema.Draft7Validator,
        jsonschema.Draft6Validator,
        jsonschema.Draft4Validator,
    )
}


def require_name(value: str, field: str = "name") -> str:
    if not value.strip():
        raise InvalidInput(f"{field} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(f"{field} is longer than {MAX_NAME_LENGTH} characters")
    return value


def tool_name(name: str) -> str:
    if not _TOOL_NAME.fullmatch(name):
        raise InvalidInput(
            f"name {name!r} is not a valid MCP tool name: "
            "use 1-128 characters of A-Z, a-z, 0-9, '_', '-', '.'"
        )
    return name


def json_schema_object(schema: Mapping[str, Any], field: str) -> dict[str, Any]:
    """A JSON Schema for tool input or output: valid against its meta-schema, with ``type: object``."""
    if schema.get("type") != "object":
        raise InvalidInput(f'{field} must be a JSON Schema with "type": "object"')
    declared = schema.get("$schema")
    if declared is None:
        validator: Any = jsonschema.Draft202012Validator
    elif isinstance(declared, str) and declared.rstrip("#") in _KNOWN_DIALECTS:
        validator = _KNOWN_DIALECTS[declared.rstrip("#")]
    else:
        raise InvalidInput(f"{field}: unsupported $schema {declared!r}")
    try:
        validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path)
        raise InvalidInput(
            f"{field} is not a valid JSON Schema: {exc.message}" + (f" (at {where})" if where else "")
        ) from None
    return dict(schema)


def uri(value: str, field: str = "uri") -> str:
    if not is_absolute_uri(value):
        raise InvalidInput(f"{field} {value!r} is not a valid absolute URI (RFC 3986)")
    return value


def uri_or_placeholder(value: str, field: str) -> str:
    """A prompt's URI may be (or hold) an ``{{argument}}``: substitution at ``prompts/get`` makes the URI,
    and the edge checks the result then. Here only what is written around the placeholders is checked."""
    if not _PLACEHOLDER.search(value):
        return uri(value, field)
    if not has_only_uri_characters(_PLACEHOLDER.sub("", value)):
        raise InvalidInput(f"{field} {value!r} holds characters a URI may not contain")
    return value


def http_url(value: str, field: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput(f"{field} must be an http:// or https:// URL")
    uri(value, field)
    return value


def uri_template(template: str, field: str = "uriTemplate") -> str:
    """RFC 6570 (levels 1-4), with at least one expression."""
    position = 0
    expressions = 0
    while position < len(template):
        start = template.find("{", position)
        literal = template[position:] if start < 0 else template[position:start]
        if "}" in literal:
            raise InvalidInput(f"{field}: unmatched '}}' in {template!r}")
        if not _TEMPLATE_LITERAL.fullmatch(literal):
            raise InvalidInput(f"{field}: {literal!r} holds characters a URI template may not contain")
        if start < 0:
            break
        end = template.find("}", start)
        if end < 0:
            raise InvalidInput(f"{field}: unclosed '{{' in {template!r}")
        _template_expression(template[start + 1 : end], field)
        expressions += 1
        position = end + 1
    if expressions == 0:
        raise InvalidInput(f"{field} {template!r} has no {{variable}}: use uri for a fixed resource")
    return template


def _template_expression(body: str, field: str) -> None:
    if body and body[0] in _RESERVED_OPERATORS:
        raise InvalidInput(f"{field}: operator {body[0]!r} is reserved by RFC 6570")
    if body and body[0] in _TEMPLATE_OPERATORS:
        body = body[1:]
    if not body:
        raise InvalidInput(f"{field}: empty expression {{}}")
    for varspec in body.split(","):
        name = varspec
        if varspec.endswith("*"):
            name = varspec[:-1]
        elif ":" in varspec:
            name, _, length = varspec.partition(":")
            if not (length.isdigit() and 1 <= len(length) <= 4 and not length.startswith("0")):
                raise InvalidInput(f"{field}: bad prefix modifier in {varspec!r}")
        if not _VARNAME.fullmatch(name):
            raise InvalidInput(f"{field}: {varspec!r} is not a valid variable")


def base64_blob(value: str, field: str = "blob") -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{field} must be base64") from None
    return value


def content_block(block: Mapping[str, Any], field: str, *, placeholders: bool = False) -> None:
    """An MCP content block: text, image, audio, resource_link or embedded resource. With
    ``placeholders`` (a prompt's message), a URI may be filled by ``{{argument}}`` substitution."""
    check_uri = uri_or_placeholder if placeholders else uri
    kind = block.get("type")
    if kind == "text":
        _string(block, "text", field)
    elif kind in {"image", "audio"}:
        base64_blob(_string(block, "data", field), f"{field}.data")
        _string(block, "mimeType", field)
    elif kind == "resource_link":
        check_uri(_string(block, "uri", field), f"{field}.uri")
        _string(block, "name", field)
    elif kind == "resource":
        resource = block.get("resource")
        if not isinstance(resource, Mapping):
            raise InvalidInput(f"{field}.resource must be an object")
        check_uri(_string(resource, "uri", f"{field}.resource"), f"{field}.resource.uri")
        has_text = isinstance(resource.get("text"), str)
        has_blob = isinstance(resource.get("blob"), str)
        if has_text == has_blob:
            raise InvalidInput(f"{field}.resource needs exactly one of text or blob")
        if has_blob:
            base64_blob(resource["blob"], f"{field}.resource.blob")
    else:
        raise InvalidInput(
            f"{field}.type {kind!r} is not a content type (text, image, audio, resource_link, resource)"
        )


def _string(block: Mapping[str, Any], key: str, field: str) -> str:
    value = block.get(key)
    if not isinstance(value, str):
        raise InvalidInput(f"{field}.{key} must be a string")
    return value


def handler(
    value: StaticHandler | HttpHandler | WorkerHandler, field: str = "handler", *, tools: bool = False
) -> None:
    """The handler kinds are already typed by decoding; these are the rules types cannot say. Only a
    tool's worker handler may allow tasks (the Tasks extension augments ``tools/call`` alone)."""
    if isinstance(value, StaticHandler):
        for index, block in enumerate(value.content):
            content_block(block, f"{field}.content[{index}]")
    elif isinstance(value, HttpHandler):
        http_url(value.url, f"{field}.url")
        for name, header_value in value.headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise InvalidInput(f"{field}.headers: {name!r} is not a valid header name")
            if "\r" in header_value or "\n" in header_value:
                raise InvalidInput(f"{field}.headers: the value of {name!r} contains a line break")
        _timeout(value.timeout_ms, field)
    else:
        if not all(_NATS_TOKEN.fullmatch(token) for token in value.subject.split(".")):
            raise InvalidInput(
                f"{field}.subject {value.subject!r} must be dot-separated tokens of A-Z a-z 0-9 _ -"
            )
        _timeout(value.timeout_ms, field)
        if value.task_support != "forbidden" and not tools:
            raise InvalidInput(f"{field}.taskSupport: only a tool can run as a task")


def _timeout(timeout_ms: int, field: str) -> None:
    if not 1 <= timeout_ms <= MAX_TIMEOUT_MS:
        raise InvalidInput(f"{field}.timeoutMs must be from 1 to {MAX_TIMEOUT_MS}")


def resource_shape(
    *,
    uri_value: str | None,
    template: str | None,
    text: str | None,
    blob: str | None,
    has_handler: bool,
) -> None:
    """Static: ``uri`` with exactly one of text, blob or a handler. Templated: ``uriTemplate`` + handler."""
    if (uri_value is None) == (template is None):
        raise InvalidInput("a resource needs exactly one of uri or uriTemplate")
    if uri_value is not None:
        uri(uri_value)
        if (text is not None) + (blob is not None) + has_handler != 1:
            raise InvalidInput("a resource with a uri needs exactly one of text, blob or handler")
        if blob is not None:
            base64_blob(blob)
    else:
        assert template is not None
        uri_template(template)
        if text is not None or blob is not None:
            raise InvalidInput("a templated resource has no text or blob: its handler produces the content")
        if not has_handler:
            raise InvalidInput("a templated resource needs a handler (http or worker)")


def prompt_shape(arguments: Iterable[Any], messages: Iterable[Any], has_handler: bool) -> None:
    """Arguments have unique names; messages use only declared ``{{arguments}}``; messages xor handler."""
    names: set[str] = set()
    for index, argument in enumerate(arguments):
        require_name(argument.name, f"arguments[{index}].name")
        if argument.name in names:
            raise InvalidInput(f"arguments: {argument.name!r} appears twice")
        names.add(argument.name)
    message_list = list(messages)
    if bool(message_list) == has_handler:
        raise InvalidInput("a prompt needs either messages or a handler (not both)")
    for index, message in enumerate(message_list):
        content_block(message.content, f"messages[{index}].content", placeholders=True)
        for text in _substituted_strings(message.content):
            for used in _PLACEHOLDER.findall(text):
                if used not in names:
                    raise InvalidInput(f"messages[{index}] uses {{{{{used}}}}}, which is not an argument")


def _substituted_strings(block: Mapping[str, Any]) -> Iterable[str]:
    """The strings of a content block that substitution fills: its text and URI (also inside an
    embedded resource)."""
    resource = block.get("resource")
    for holder in (block, resource if isinstance(resource, Mapping) else {}):
        for key in ("text", "uri"):
            value = holder.get(key)
            if isinstance(value, str):
                yield value


def oauth_endpoints(
    *,
    issuer: str | None,
    authorization_url: str | None,
    token_url: str | None,
    userinfo_url: str | None,
) -> None:
    if issuer is not None:
        if authorization_url is not None or token_url is not None or userinfo_url is not None:
            raise InvalidInput(
                "give either issuer (OIDC discovery) or authorizationUrl + tokenUrl (+ userinfoUrl), not both"
            )
        http_url(issuer, "issuer")
        return
    if authorization_url is None or token_url is None:
        raise InvalidInput("give either issuer (OIDC discovery) or authorizationUrl + tokenUrl")
    http_url(authorization_url, "authorizationUrl")
    http_url(token_url, "tokenUrl")
    if userinfo_url is not None:
        http_url(userinfo_url, "userinfoUrl")
