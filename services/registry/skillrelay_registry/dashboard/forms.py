"""HTML forms of the dashboard and their conversion into the REST API's request bodies.

A form is a list of ``Field``s; ``read_form`` turns the posted values into the same camelCase body a
REST client would send, and ``to_body`` converts it into the API's msgspec Struct (so the dashboard
goes through exactly the decoding and ``RegistryService`` validation the REST API does). Problems come
back as ``FormErrors``: a message per field where one can be named, else for the whole form.
Pure functions, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import msgspec

from skillrelay_common.schemas.abilities import DynamicHandler, Handler
from skillrelay_registry import schemas, validation
from skillrelay_registry.errors import RegistryError, describe_problem

# "handler": an ability's handler, JSON underneath, edited with a form per handler kind (handler_form).
Kind = Literal["text", "textarea", "json", "select", "password", "words", "handler", "integer"]
# What an empty input means: leave the field out (default / unchanged), null (remove), or "".
Empty = Literal["omit", "null", "blank"]
StructT = TypeVar("StructT", bound=msgspec.Struct)

_AT_PATH = re.compile(r"^(?P<text>.*?) - at `\$\.?(?P<path>[^`]*)`$", re.DOTALL)
_DYNAMIC_HANDLER_BODIES = (
    schemas.ResourceCreate,
    schemas.ResourceUpdate,
    schemas.PromptCreate,
    schemas.PromptUpdate,
)


@dataclass(frozen=True)
class Field:
    name: str  # the body's camelCase key, also the input's name and id
    label: str
    kind: Kind = "text"
    empty: Empty = "omit"
    required: bool = False
    hint: str = ""
    rows: int = 3
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) for selects
    validate: str | None = None  # which live check (see ``check_json_field``) the input asks for


@dataclass
class FormErrors(Exception):
    fields: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)


def read_form(fields: list[Field], form: Mapping[str, Any]) -> tuple[dict[str, Any], FormErrors]:
    """The body the form describes, and the inputs that could not even be read (bad JSON)."""
    body: dict[str, Any] = {}
    errors = FormErrors()
    for spec in fields:
        raw = form.get(spec.name)
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            if spec.empty == "null":
                body[spec.name] = None
            elif spec.empty == "blank":
                body[spec.name] = ""
            continue
        if spec.kind in ("json", "handler"):
            try:
                body[spec.name] = json.loads(text)
            except json.JSONDecodeError as exc:
                errors.fields[spec.name] = (
                    f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
                )
        elif spec.kind == "words":
            body[spec.name] = [word for word in re.split(r"[\s,]+", text) if word]
        elif spec.kind == "integer":
            if text.isdigit() and len(text) <= 9:
                body[spec.name] = int(text)
            else:
                errors.fields[spec.name] = "a whole number"
        else:
            body[spec.name] = raw if spec.kind in {"textarea", "password"} else text
    return body, errors


def to_body(body: dict[str, Any], struct: type[StructT], errors: FormErrors) -> StructT:
    """``body`` decoded like a REST request body; raises ``FormErrors`` with every problem found."""
    if errors:
        raise errors
    try:
        return msgspec.convert(body, struct)
    except msgspec.ValidationError as exc:
        key, message = decode_problem(str(exc), "", dynamic=struct in _DYNAMIC_HANDLER_BODIES)
        if key:
            raise FormErrors(fields={key.split(".")[0].split("[")[0]: message}) from None
        raise validation_errors(message) from None


def decode_problem(message: str, prefix: str, *, dynamic: bool) -> tuple[str, str]:
    """A msgspec decoding error (``Invalid value 'x' - at `$.handler.type```) in the words the REST
    API uses (``registry.errors.describe_problem``); returns the dotted key it is about and the text."""
    match = _AT_PATH.match(message)
    if match is None:
        return prefix, message
    path = match.group("path")
    key = ".".join(part for part in (prefix, path) if part)
    return key, describe_problem({"message": match.group("text"), "key": key}, dynamic_handlers_only=dynamic)


def validation_errors(message: str) -> FormErrors:
    """A ``RegistryError`` message, attached to the field it starts with where it names one."""
    head = re.match(r"^([A-Za-z]+)\b", message)
    if head and head.group(1) in _KNOWN_FIELDS:
        return FormErrors(fields={head.group(1): message})
    return FormErrors(general=[message])


def registry_errors(exc: RegistryError) -> FormErrors:
    return validation_errors(exc.message)


# --- live checks (htmx, while typing) -------------------------------------------------------------


def check_json_field(check: str, text: str, field_name: str | None = None) -> str | None:
    """The problem with one JSON input, judged by the REST API's own rules; None when it is fine."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    try:
        if check in {"inputSchema", "outputSchema"}:
            if not isinstance(value, dict):
                return "must be a JSON object"
            validation.json_schema_object(value, check)
        elif check == "handler":
            validation.handler(msgspec.convert(value, Handler), tools=True)  # an ability's
        elif check == "dynamicHandler":
            validation.handler(msgspec.convert(value, DynamicHandler))
        elif check == "arguments":
            msgspec.convert(value, list[schemas.PromptArgumentIn])
        elif check == "messages":
            msgspec.convert(value, list[schemas.PromptMessageIn])
        elif not isinstance(value, dict):
            return "must be a JSON object"
    except msgspec.ValidationError as exc:
        return decode_problem(str(exc), field_name or check, dynamic=check == "dynamicHandler")[1]
    except RegistryError as exc:
        return exc.message
    return None


# --- the forms ------------------------------------------------------------------------------------

STATIC_HANDLER_EXAMPLE = '{"type": "static", "content": [{"type": "text", "text": "Hello, {{name}}!"}]}'
INPUT_SCHEMA_EXAMPLE = '{"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}'

SKILLSET_FIELDS = [
    Field("name", "Name", required=True, empty="blank"),
    Field("description", "Description", "textarea", empty="blank"),
]

ABILITY_FIELDS = [
    Field(
        "name", "Tool name", required=True, empty="blank", hint="1 to 128 characters: letters, digits, _ - ."
    ),
    Field("title", "Title", empty="null", hint="optional, shown to people instead of the name"),
    Field("description", "Description", "textarea", empty="blank"),
    Field(
        "inputSchema",
        "Input schema (JSON Schema)",
        "json",
        rows=6,
        hint='a JSON Schema with "type": "object"; empty means any object',
        validate="inputSchema",
    ),
    Field(
        "outputSchema", "Output schema (JSON Schema)", "json", empty="null", rows=4, validate="outputSchema"
    ),
    Field(
        "handler",
        "Handler",
        "handler",
        required=True,
        rows=6,
        hint='{"type": "static", "content": […]}, {"type": "http", "method", "url"} or '
        '{"type": "worker", "subject"}; {{argument}} is replaced in static text',
        validate="handler",
    ),
    Field("annotations", "Annotations (JSON)", "json", empty="null", hint='e.g. {"readOnlyHint": true}'),
]

RESOURCE_FIELDS = [
    Field("name", "Name", required=True, empty="blank"),
    Field("title", "Title", empty="null"),
    Field("description", "Description", "textarea", empty="blank"),
    Field("uri", "URI", empty="null", hint="a fixed resource, e.g. docs://readme"),
    Field("uriTemplate", "URI template", empty="null", hint="or a template, e.g. docs://{page}"),
    Field("mimeType", "MIME type", empty="null", hint="e.g. text/markdown"),
    Field("text", "Text content", "textarea", empty="null", rows=5),
    Field("blob", "Binary content (base64)", "textarea", empty="null"),
    Field("handler", "Handler for a template (JSON)", "json", empty="null", validate="dynamicHandler"),
]

PROMPT_FIELDS = [
    Field("name", "Name", required=True, empty="blank"),
    Field("title", "Title", empty="null"),
    Field("description", "Description", "textarea", empty="blank"),
    Field(
        "arguments",
        "Arguments (JSON)",
        "json",
        rows=4,
        hint='[{"name": "code", "description": "…", "required": true}]',
        validate="arguments",
    ),
    Field(
        "messages",
        "Messages (JSON)",
        "json",
        rows=6,
        hint='[{"role": "user", "content": {"type": "text", "text": "Review {{code}}"}}]',
        validate="messages",
    ),
    Field("handler", "Worker or http handler (JSON)", "json", empty="null", validate="dynamicHandler"),
]


def oauth_connection_fields(*, editing: bool) -> list[Field]:
    return [
        Field("name", "Name", required=True, empty="blank"),
        Field("description", "Description", "textarea", empty="blank"),
        Field("clientId", "Client ID", required=True, empty="blank"),
        Field(
            "clientSecret",
            "Client secret",
            "password",
            required=not editing,
            empty="omit" if editing else "blank",
            hint="leave empty to keep the current secret"
            if editing
            else "stored encrypted; never shown again",
        ),
        Field("scopes", "Scopes", "words", empty="omit", hint="separated by spaces, e.g. openid email"),
        Field("issuer", "Issuer (OIDC discovery)", empty="null", hint="e.g. https://accounts.example.com"),
        Field("authorizationUrl", "Authorization URL", empty="null", hint="instead of an issuer"),
        Field("tokenUrl", "Token URL", empty="null"),
        Field("userinfoUrl", "Userinfo URL", empty="null"),
    ]


def integration_fields(skillsets: list[tuple[str, str]], connections: list[tuple[str, str]]) -> list[Field]:
    return [
        Field("name", "Name", required=True, empty="blank"),
        Field("description", "Description", "textarea", empty="blank"),
        Field("skillsetId", "Skillset", "select", required=True, empty="blank", choices=tuple(skillsets)),
        Field(
            "oAuthConnectionId",
            "OAuth connection",
            "select",
            empty="null",
            choices=(("", "none: the access token alone"), *connections),
            hint="end users then also sign in at your identity provider",
        ),
        Field(
            "sessionMode",
            "Session mode",
            "select",
            choices=(
                ("strict", "strict: an unknown or expired session is refused (404)"),
                ("renew", "renew: a fresh session is issued instead"),
            ),
        ),
        Field(
            "sessionIdleMinutes",
            "Session idle timeout (minutes)",
            "integer",
            hint="a session unused this long ends (1 to 43200; 1440 is a day); new sessions take a change",
        ),
        Field(
            "maxSessions",
            "Most live sessions",
            "integer",
            hint="opening one more ends the least recently used (1 to 10000)",
        ),
    ]


def form_values(fields: list[Field], record: Mapping[str, Any]) -> dict[str, str]:
    """What the inputs show for a stored record (camelCase dict as the REST API returns it)."""
    values: dict[str, str] = {}
    for spec in fields:
        value = record.get(spec.name)
        if value is None or spec.kind == "password":
            values[spec.name] = ""
        elif spec.kind in ("json", "handler"):
            values[spec.name] = json.dumps(value, indent=2, ensure_ascii=False)
        elif spec.kind == "words":
            values[spec.name] = " ".join(value)
        else:
            values[spec.name] = str(value)
    return values


def posted_values(fields: list[Field], form: Mapping[str, Any]) -> dict[str, str]:
    """The inputs as posted, to show them again next to their errors."""
    values: dict[str, str] = {}
    for spec in fields:
        raw = form.get(spec.name)
        values[spec.name] = "" if spec.kind == "password" or not isinstance(raw, str) else raw
    return values


_KNOWN_FIELDS = {
    spec.name
    for spec in [
        *SKILLSET_FIELDS,
        *ABILITY_FIELDS,
        *RESOURCE_FIELDS,
        *PROMPT_FIELDS,
        *oauth_connection_fields(editing=False),
        *integration_fields([], []),
    ]
}
