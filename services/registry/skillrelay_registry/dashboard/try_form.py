"""The "Try it" panel's forms: inputs generated from a tool's input schema (or a prompt's arguments, or
a templated resource's URI), and the posted values turned back into JSON-RPC params. Pure functions.

A top-level property becomes an input that fits its type: text, a number, a checkbox for a boolean, a
choice for an ``enum``; anything nested (objects, arrays, unions) is a JSON text box. Values are
converted by the schema's type and the edge validates the arguments as it would for any client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

InputKind = Literal["text", "number", "integer", "boolean", "select", "json"]
ARG_PREFIX = "arg."


@dataclass(frozen=True)
class ArgInput:
    name: str
    kind: InputKind
    required: bool = False
    hint: str = ""
    choices: tuple[str, ...] = ()
    default: str = ""

    @property
    def field(self) -> str:
        """The form field's name (and, with ``try-``, its element id)."""
        return ARG_PREFIX + self.name


@dataclass(frozen=True)
class Target:
    """What is tried: ``tool``, ``resource`` or ``prompt`` and its name (a resource's URI or template)."""

    kind: Literal["tool", "resource", "prompt"]
    name: str

    @property
    def value(self) -> str:
        return f"{self.kind}:{self.name}"

    @staticmethod
    def parse(value: str | None) -> Target | None:
        kind, _, name = (value or "").partition(":")
        if kind in ("tool", "resource", "prompt") and name:
            return Target(kind, name)  # type: ignore[arg-type]
        return None


def _kind(schema: Mapping[str, Any]) -> InputKind:
    if isinstance(schema.get("enum"), list) and all(isinstance(v, str) for v in schema["enum"]):
        return "select"
    kind = schema.get("type")
    if kind in ("string", "number", "integer", "boolean"):
        return "text" if kind == "string" else kind
    return "json"


def schema_inputs(input_schema: Mapping[str, Any]) -> list[ArgInput]:
    properties = input_schema.get("properties")
    if not isinstance(properties, Mapping):
        return []
    required = input_schema.get("required")
    required_names = set(required) if isinstance(required, list) else set()
    inputs = []
    for name, spec in properties.items():
        spec = spec if isinstance(spec, Mapping) else {}
        kind = _kind(spec)
        hint = str(spec.get("description") or spec.get("title") or "")
        if kind == "json":
            hint = (hint + " " if hint else "") + f"(JSON{': ' + spec['type'] if 'type' in spec else ''})"
        default = spec.get("default")
        shown_default = (
            "" if default is None else default if isinstance(default, str) else json.dumps(default)
        )
        inputs.append(
            ArgInput(
                name=str(name),
                kind=kind,
                required=name in required_names,
                hint=hint,
                choices=tuple(spec["enum"]) if kind == "select" else (),
                default=shown_default,
            )
        )
    return sorted(inputs, key=lambda spec: not spec.required)  # required ones first, else in order


def prompt_inputs(arguments: list[dict[str, Any]]) -> list[ArgInput]:
    return [
        ArgInput(
            name=str(argument.get("name", "")),
            kind="text",
            required=bool(argument.get("required")),
            hint=str(argument.get("description") or ""),
        )
        for argument in arguments
        if argument.get("name")
    ]


def read_arguments(inputs: list[ArgInput], form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The arguments the form holds (empty inputs left out) and a problem per input that could not be
    read. Required ones are left to the edge, which answers as it would to any client."""
    arguments: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for spec in inputs:
        raw = form.get(spec.field)
        if spec.kind == "boolean":
            if raw is not None:
                arguments[spec.name] = raw in ("true", "on", "1")
            continue
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            continue
        try:
            arguments[spec.name] = _convert(spec.kind, text)
        except ValueError as exc:
            problems[spec.field] = str(exc)
    return arguments, problems


def _convert(kind: InputKind, text: str) -> Any:
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError("not a whole number") from None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError("not a number") from None
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    if kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    return text
