"""Content blocks and results: the helpers a handler builds its answer with, and how what a handler
returns becomes the MCP result."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any


def _b64(data: bytes | str) -> str:
    return data if isinstance(data, str) else base64.b64encode(data).decode()


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def image(data: bytes | str, mime_type: str = "image/png") -> dict[str, Any]:
    """An image block; ``data`` is raw bytes or already base64."""
    return {"type": "image", "data": _b64(data), "mimeType": mime_type}


def audio(data: bytes | str, mime_type: str = "audio/wav") -> dict[str, Any]:
    return {"type": "audio", "data": _b64(data), "mimeType": mime_type}


def embedded_resource(
    uri: str, *, mime_type: str = "text/plain", text: str | None = None, blob: bytes | str | None = None
) -> dict[str, Any]:
    """A ``resource`` content block holding ``text`` or a ``blob``."""
    resource: dict[str, Any] = {"uri": uri, "mimeType": mime_type}
    if blob is not None:
        resource["blob"] = _b64(blob)
    else:
        resource["text"] = text or ""
    return {"type": "resource", "resource": resource}


@dataclass
class ToolResult:
    """A full tool result; return a plain ``str`` or a list of content blocks for the common cases."""

    content: list[dict[str, Any]] = field(default_factory=list)
    structured_content: dict[str, Any] | None = None
    is_error: bool = False

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"content": self.content}
        if self.structured_content is not None:
            result["structuredContent"] = self.structured_content
        if self.is_error:
            result["isError"] = True
        return result


# What a handler may return: a tool's text, blocks or full result; a resource's text, bytes (a blob), one
# contents item or a list of them; a prompt's messages or a full ``GetPromptResult`` dict.
ToolOutput = str | list[dict[str, Any]] | ToolResult | dict[str, Any]
ResourceOutput = str | bytes | dict[str, Any] | list[dict[str, Any]]
PromptOutput = list[dict[str, Any]] | dict[str, Any]


def tool_result(output: ToolOutput) -> dict[str, Any]:
    if isinstance(output, ToolResult):
        return output.to_json()
    if isinstance(output, str):
        return {"content": [text(output)]}
    if isinstance(output, list):
        return {"content": output}
    return output


def resource_contents(uri: str, mime_type: str | None, output: ResourceOutput) -> list[dict[str, Any]]:
    if isinstance(output, list):
        return output
    if isinstance(output, dict):
        return [output]
    item: dict[str, Any] = {"uri": uri}
    if mime_type:
        item["mimeType"] = mime_type
    if isinstance(output, bytes):
        item["blob"] = _b64(output)
    else:
        item["text"] = output
    return [item]
