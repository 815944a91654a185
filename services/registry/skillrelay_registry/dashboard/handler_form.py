"""An ability's handler edited with a form per handler kind (static text, an HTTP call, a worker), the
raw JSON staying available for anything the forms do not cover (several content blocks, structured
content). Pure functions: ``handler_from_form`` writes the JSON the REST API takes into the posted
form's ``handler`` field, so the handler goes through exactly the API's decoding and validation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

KIND = "handlerKind"
KINDS = (
    ("static", "Static content"),
    ("http", "HTTP call"),
    ("worker", "Worker"),
    ("json", "Raw JSON"),
)
HTTP_METHODS = ("POST", "GET", "PUT", "PATCH", "DELETE")
TEXT, IS_ERROR = "handlerText", "handlerIsError"
METHOD, URL, HEADERS, TIMEOUT = "handlerMethod", "handlerUrl", "handlerHeaders", "handlerTimeoutMs"
SUBJECT, WORKER_TIMEOUT = "handlerSubject", "handlerWorkerTimeoutMs"
FIELDS = (KIND, TEXT, IS_ERROR, METHOD, URL, HEADERS, TIMEOUT, SUBJECT, WORKER_TIMEOUT)


class HandlerFormError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _timeout(form: Mapping[str, Any], name: str) -> int | None:
    text = _text(form, name)
    if not text:
        return None
    if not text.isdigit():
        raise HandlerFormError(name, "a timeout is a whole number of milliseconds")
    return int(text)


def _headers(text: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise HandlerFormError(HEADERS, f"line {number}: write one header a line, as Name: value")
        headers[name.strip()] = value.strip()
    return headers


def handler_from_form(form: Mapping[str, Any]) -> dict[str, Any] | None:
    """The handler the kind's inputs describe; None for raw JSON (or a form without the kind choice)."""
    kind = _text(form, KIND)
    if kind == "static":
        handler: dict[str, Any] = {
            "type": "static",
            "content": [{"type": "text", "text": form.get(TEXT) or ""}],
        }
        if form.get(IS_ERROR) in ("true", "on"):
            handler["isError"] = True
        return handler
    if kind == "http":
        handler = {"type": "http", "method": _text(form, METHOD) or "POST", "url": _text(form, URL)}
        headers = _headers(form.get(HEADERS) or "")
        if headers:
            handler["headers"] = headers
        timeout = _timeout(form, TIMEOUT)
        if timeout is not None:
            handler["timeoutMs"] = timeout
        return handler
    if kind == "worker":
        handler = {"type": "worker", "subject": _text(form, SUBJECT)}
        timeout = _timeout(form, WORKER_TIMEOUT)
        if timeout is not None:
            handler["timeoutMs"] = timeout
        return handler
    return None


def with_handler(form: Mapping[str, Any]) -> dict[str, Any]:
    """The posted form with ``handler`` (JSON) written from the kind's inputs, unless raw JSON was
    chosen. Raises ``HandlerFormError`` for an input that cannot be read."""
    handler = handler_from_form(form)
    if handler is None:
        return dict(form)
    return {**form, "handler": json.dumps(handler)}


def handler_values(handler: Any) -> dict[str, str]:
    """The kind's inputs for a stored handler; raw JSON when no form shows all of it."""
    values = {KIND: "json"}
    if not isinstance(handler, Mapping):
        return values
    kind = handler.get("type")
    content = handler.get("content")
    if (
        kind == "static"
        and set(handler) <= {"type", "content", "isError"}
        and isinstance(content, list)
        and len(content) == 1
        and isinstance(content[0], Mapping)
        and set(content[0]) == {"type", "text"}
        and content[0].get("type") == "text"
    ):
        values.update({KIND: "static", TEXT: str(content[0]["text"])})
        if handler.get("isError"):
            values[IS_ERROR] = "true"
    elif kind == "http" and set(handler) <= {"type", "method", "url", "headers", "timeoutMs"}:
        headers = handler.get("headers") or {}
        values.update(
            {
                KIND: "http",
                METHOD: str(handler.get("method", "POST")),
                URL: str(handler.get("url", "")),
                HEADERS: "\n".join(f"{name}: {value}" for name, value in headers.items()),
                TIMEOUT: str(handler.get("timeoutMs", "")),
            }
        )
    elif kind == "worker" and set(handler) <= {"type", "subject", "timeoutMs"}:
        values.update(
            {
                KIND: "worker",
                SUBJECT: str(handler.get("subject", "")),
                WORKER_TIMEOUT: str(handler.get("timeoutMs", "")),
            }
        )
    return values
