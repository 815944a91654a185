"""The everything skillset as REST request bodies: ``static`` where fixed content is exact, ``worker``
(served by ``everything_worker.worker``) where code must run."""

from __future__ import annotations

from typing import Any

from everything_worker.content import PNG_BASE64, WAV_BASE64

EMPTY_INPUT: dict[str, Any] = {"type": "object", "properties": {}}

JSON_SCHEMA_2020_12_INPUT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
    "additionalProperties": False,
}


def _static(content: list[dict[str, Any]], *, is_error: bool = False) -> dict[str, Any]:
    handler: dict[str, Any] = {"type": "static", "content": content}
    if is_error:
        handler["isError"] = True
    return handler


def _text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def _image() -> dict[str, Any]:
    return {"type": "image", "data": PNG_BASE64, "mimeType": "image/png"}


def abilities(subject: str) -> list[dict[str, Any]]:
    worker = {"type": "worker", "subject": subject, "timeoutMs": 60_000}

    def tool(
        name: str, description: str, handler: dict[str, Any], schema: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {
            "name": name,
            "description": description,
            "inputSchema": schema or EMPTY_INPUT,
            "handler": handler,
        }

    return [
        tool(
            "test_simple_text",
            "Tests simple text content response",
            _static([_text("This is a simple text response for testing.")]),
        ),
        tool("test_image_content", "Tests image content response", _static([_image()])),
        tool(
            "test_audio_content",
            "Tests audio content response",
            _static([{"type": "audio", "data": WAV_BASE64, "mimeType": "audio/wav"}]),
        ),
        tool(
            "test_embedded_resource",
            "Tests embedded resource content response",
            _static(
                [
                    {
                        "type": "resource",
                        "resource": {
                            "uri": "test://embedded-resource",
                            "mimeType": "text/plain",
                            "text": "This is an embedded resource content.",
                        },
                    }
                ]
            ),
        ),
        tool(
            "test_multiple_content_types",
            "Tests response with multiple content types (text, image, resource)",
            _static(
                [
                    _text("Multiple content types test:"),
                    _image(),
                    {
                        "type": "resource",
                        "resource": {
                            "uri": "test://mixed-content-resource",
                            "mimeType": "application/json",
                            "text": '{"test":"data","value":123}',
                        },
                    },
                ]
            ),
        ),
        tool(
            "test_error_handling",
            "Tests error response handling",
            _static([_text("This tool intentionally returns an error for testing")], is_error=True),
        ),
        tool("test_tool_with_logging", "Tests tool that emits log messages during execution", worker),
        tool("test_tool_with_progress", "Tests tool that reports progress notifications", worker),
        tool(
            "test_sampling",
            "Tests server-initiated sampling (LLM completion request)",
            worker,
            {
                "type": "object",
                "properties": {"prompt": {"type": "string", "description": "The prompt to send to the LLM"}},
                "required": ["prompt"],
            },
        ),
        tool(
            "test_elicitation",
            "Tests server-initiated elicitation (user input request)",
            worker,
            {
                "type": "object",
                "properties": {"message": {"type": "string", "description": "The message to show the user"}},
                "required": ["message"],
            },
        ),
        tool(
            "test_elicitation_sep1034_defaults",
            "Tests elicitation with default values for all primitive types (SEP-1034)",
            worker,
        ),
        tool(
            "test_elicitation_sep1330_enums",
            "Tests elicitation with enum schema improvements (SEP-1330)",
            worker,
        ),
        tool(
            "test_reconnection", "Tests SSE stream disconnection and client reconnection (SEP-1699)", worker
        ),
        tool(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            worker,
            JSON_SCHEMA_2020_12_INPUT,
        ),
        tool("test_roots", "Lists the client's roots (server-to-client roots/list)", worker),
    ]


def resources(subject: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "static-text",
            "uri": "test://static-text",
            "description": "A static text resource for testing",
            "mimeType": "text/plain",
            "text": "This is the content of the static text resource.",
        },
        {
            "name": "static-binary",
            "uri": "test://static-binary",
            "description": "A static binary resource (image) for testing",
            "mimeType": "image/png",
            "blob": PNG_BASE64,
        },
        {
            "name": "watched-resource",
            "uri": "test://watched-resource",
            "description": "A resource that can be subscribed to for updates",
            "mimeType": "text/plain",
            "text": "Watched resource content",
        },
        {
            "name": "template",
            "uriTemplate": "test://template/{id}/data",
            "description": "A resource template with parameter substitution",
            "mimeType": "application/json",
            "handler": {"type": "worker", "subject": subject},
        },
    ]


def prompts(subject: str) -> list[dict[str, Any]]:
    worker = {"type": "worker", "subject": subject}
    return [
        {
            "name": "test_simple_prompt",
            "description": "A simple prompt without arguments",
            "messages": [{"role": "user", "content": _text("This is a simple prompt for testing.")}],
        },
        {
            "name": "test_prompt_with_arguments",
            "description": "A prompt with required arguments",
            "arguments": [
                {"name": "arg1", "description": "First test argument", "required": True},
                {"name": "arg2", "description": "Second test argument", "required": True},
            ],
            "handler": worker,
        },
        {
            "name": "test_prompt_with_embedded_resource",
            "description": "A prompt that includes an embedded resource",
            "arguments": [
                {"name": "resourceUri", "description": "URI of the resource to embed", "required": True}
            ],
            "handler": worker,
        },
        {
            "name": "test_prompt_with_image",
            "description": "A prompt that includes an image",
            "messages": [
                {"role": "user", "content": _image()},
                {"role": "user", "content": _text("Please analyze the image above.")},
            ],
        },
    ]
