"""What pydantic needs to describe a msgspec message: a core schema whose JSON schema is msgspec's own.

Imported only by ``Message.__get_pydantic_core_schema__``, i.e. only where pydantic is installed (the
services' AsyncAPI generator, FastStream); a worker never imports it. Each Struct, enum or other named
type msgspec puts in a message's components becomes a pydantic definition of the same name, so nested
types end up once each under ``$defs`` (FastStream's ``components/schemas``) and are referred to by name.
The schemas describe; at run time messages are decoded by msgspec, never validated by pydantic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from pydantic import GetJsonSchemaHandler
from pydantic_core import CoreSchema, core_schema

_PLACEHOLDER = "msgspec-component:"


def msgspec_core_schema(message_type: type[Any]) -> CoreSchema:
    """The message and the named types inside it, each a pydantic definition described by its
    ``msgspec.json.schema_components`` entry (an instance of the message validates as itself)."""
    _, components = msgspec.json.schema_components([message_type], ref_template=_PLACEHOLDER + "{name}")
    own = components.pop(message_type.__name__)

    def validate(value: Any) -> Any:
        return value if isinstance(value, message_type) else msgspec.convert(value, message_type)

    return core_schema.definitions_schema(
        core_schema.no_info_plain_validator_function(
            validate,
            ref=message_type.__name__,
            metadata=_described(own),
            # Never shown (the description replaces it): refers to the components so pydantic keeps them.
            json_schema_input_schema=core_schema.tuple_schema(
                [core_schema.definition_reference_schema(name) for name in components]
            ),
        ),
        [core_schema.any_schema(ref=name, metadata=_described(body)) for name, body in components.items()],
    )


def _described(schema: dict[str, Any]) -> dict[str, Any]:
    def json_schema(core: CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        if "json_schema_input_schema" in core:  # the components: now pydantic definitions
            handler(core["json_schema_input_schema"])
        # A ref to another component is pydantic's own, so it resolves wherever the schema lands.
        return _with_refs(schema, lambda name: handler(core_schema.definition_reference_schema(name)))  # type: ignore[no-any-return]

    return {"pydantic_js_functions": [json_schema]}


def _with_refs(schema: Any, ref: Callable[[str], dict[str, Any]]) -> Any:
    """msgspec's schema with its refs given by ``ref`` and its discriminators in AsyncAPI's form."""
    if isinstance(schema, dict):
        target = schema.get("$ref")
        if isinstance(target, str) and target.startswith(_PLACEHOLDER):
            rest = {key: value for key, value in schema.items() if key != "$ref"}
            return {**ref(target.removeprefix(_PLACEHOLDER)), **rest}
        converted = {key: _with_refs(value, ref) for key, value in schema.items()}
        if isinstance(converted.get("discriminator"), dict):
            # AsyncAPI's form, the tag field's name (msgspec writes OpenAPI's, whose mapping names
            # msgspec's refs, which pydantic would not rename).
            converted["discriminator"] = converted["discriminator"]["propertyName"]
        return converted
    if isinstance(schema, list):
        return [_with_refs(item, ref) for item in schema]
    return schema
