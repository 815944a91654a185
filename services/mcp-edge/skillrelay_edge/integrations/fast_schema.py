"""A fast path for the argument schemas most tools use: an object whose properties have plain types.

``compile_fast_check`` returns a predicate that answers True only when full JSON Schema validation
would also succeed; for any schema outside the subset it returns None. A False answer is not final:
the caller then runs the full validator, which also words the error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

# Keywords that only annotate and never reject a value.
_ANNOTATIONS = frozenset(
    {"description", "title", "default", "examples", "$comment", "deprecated", "$schema", "$id"}
)


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_boolean(value: Any) -> bool:
    return isinstance(value, bool)


def _is_null(value: Any) -> bool:
    return value is None


_TYPES: dict[str, Check] = {
    "string": _is_string,
    "integer": _is_integer,
    "number": _is_number,
    "boolean": _is_boolean,
    "null": _is_null,
}


def _property_check(schema: Any) -> Check | None:
    if not isinstance(schema, dict) or not set(schema) - _ANNOTATIONS <= {"type"}:
        return None
    kind = schema.get("type")
    if kind is None:
        return lambda value: True
    if isinstance(kind, str):
        return _TYPES.get(kind)
    if isinstance(kind, list) and kind and all(isinstance(k, str) and k in _TYPES for k in kind):
        checks = [_TYPES[k] for k in kind]
        return lambda value: any(check(value) for check in checks)
    return None


def compile_fast_check(schema: Any) -> Check | None:
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return None
    if not set(schema) - _ANNOTATIONS <= {"type", "properties", "required", "additionalProperties"}:
        return None
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    additional = schema.get("additionalProperties", True)
    if not isinstance(properties, dict) or not isinstance(required, list) or additional not in (True, False):
        return None
    checks: dict[str, Check] = {}
    for name, subschema in properties.items():
        check = _property_check(subschema)
        if check is None:
            return None
        checks[name] = check
    required_names = tuple(str(name) for name in required)
    closed = additional is False

    def fast_check(arguments: Any) -> bool:
        if not isinstance(arguments, dict):
            return False
        for name in required_names:
            if name not in arguments:
                return False
        for name, value in arguments.items():
            check = checks.get(name)
            if check is None:
                if closed:
                    return False
            elif not check(value):
                return False
        return True

    return fast_check
