"""The fast argument check never accepts what full JSON Schema validation rejects."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from skillrelay_edge.integrations.fast_schema import compile_fast_check

SCHEMA = {
    "type": "object",
    "properties": {
        "s": {"type": "string", "description": "text"},
        "i": {"type": "integer"},
        "n": {"type": "number"},
        "b": {"type": "boolean"},
        "either": {"type": ["string", "null"]},
        "anything": {},
    },
    "required": ["s"],
}

VALUES: list[Any] = ["x", 1, 1.5, 1.0, True, None, [], {}]


@pytest.mark.parametrize("closed", [True, False])
def test_agrees_with_jsonschema_whenever_it_accepts(closed: bool) -> None:
    schema = {**SCHEMA, "additionalProperties": not closed}
    check = compile_fast_check(schema)
    assert check is not None
    validator = jsonschema.Draft202012Validator(schema)
    cases: list[Any] = [{}, {"s": "x"}, {"s": "x", "extra": 1}, [], "x"]
    for name in ("s", "i", "n", "b", "either", "anything"):
        cases += [{"s": "x", name: value} for value in VALUES]
    for case in cases:
        if check(case):
            assert validator.is_valid(case), case
    assert check({"s": "x", "i": 3, "n": 2, "b": False, "either": None})


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string", "minLength": 2}}},
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}},
        {"type": "object", "anyOf": []},
        {"type": "array"},
        {"type": "object", "additionalProperties": {"type": "string"}},
    ],
)
def test_schemas_outside_the_subset_use_the_full_validator(schema: dict[str, Any]) -> None:
    assert compile_fast_check(schema) is None
