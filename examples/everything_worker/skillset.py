"""The everything skillset as REST request bodies: ``static`` where fixed content is exact, ``worker``
(served by ``everything_worker.worker``) where code must run."""

from __future__ import annotations

from typing import Any

from everything_worker.content import PNG_BASE64, WAV_BASE64
from everything_worker.tasks import TASK_TIMEOUT_MS

EMPTY_INPUT: dict[str, Any] = {"type": "object", "properties": {}}

JSON_SCHEMA_2020_12_INPUT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    # SEP-2106: composition and conditional keywords are kept as written.
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}

# SEP-2243: a 2026-07-28 client mirrors `region` into `Mcp-Param-Region`; the edge checks they agree.
CUSTOM_HEADER_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {"region": {"type": "string", "x-mcp-header": "Region"}},
    "required": ["region"],
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
        tool(
            "test_custom_header",
            "Echoes nothing: its region argument is mirrored in the Mcp-Param-Region header (SEP-2243)",
            _static([_text("The region arrived in its header and in the body alike.")]),
            CUSTOM_HEADER_INPUT,
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
        *(tool(name, description, worker) for name, description in MODERN_TOOLS),
        tool(
            "greet",
            "Greets by name (never a task)",
            _static([_text("Hello, {{name}}!")]),
            {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        ),
        *(
            tool(name, description, {**worker, "timeoutMs": TASK_TIMEOUT_MS, "taskSupport": support}, schema)
            for name, description, support, schema in TASK_TOOLS
        ),
    ]


# The Tasks extension's tools (``everything_worker.tasks``): each may go on as a task.
TASK_TOOLS: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "slow_compute",
        "Sleeps for `seconds`, then answers (as a task)",
        "optional",
        {
            "type": "object",
            "properties": {"seconds": {"type": "number", "minimum": 0}, "label": {"type": "string"}},
        },
    ),
    ("failing_job", "A task whose tool fails after about a second", "required", EMPTY_INPUT),
    ("protocol_error_job", "A task that ends in a protocol error", "optional", EMPTY_INPUT),
    (
        "confirm_delete",
        "Asks for a confirmation inside a task, then deletes (nothing real)",
        "optional",
        {"type": "object", "properties": {"filename": {"type": "string"}}},
    ),
    ("multi_input", "Asks two questions at once inside a task", "optional", EMPTY_INPUT),
    ("test_tool_with_task", "Asks the user's name, then greets them as a task", "required", EMPTY_INPUT),
]


# The 2026-07-28 suite's tools: questions to the client (multi round-trip requests), the diagnostic
# tools of its stateless scenario, and calls that change the skillset (list_changed on listen streams).
MODERN_TOOLS: list[tuple[str, str]] = [
    ("test_input_required_result_elicitation", "Asks the user's name (elicitation)"),
    ("test_input_required_result_sampling", "Asks the client's LLM a question (sampling)"),
    ("test_input_required_result_list_roots", "Asks the client's roots"),
    ("test_input_required_result_request_state", "Asks for a confirmation, then confirms its state"),
    ("test_input_required_result_multiple_inputs", "Asks three questions at once"),
    ("test_input_required_result_multi_round", "Asks one question, then another"),
    ("test_input_required_result_tampered_state", "Asks for a confirmation (its state must be genuine)"),
    ("test_input_required_result_capabilities", "Asks only what the client declared it can answer"),
    ("test_missing_capability", "Needs sampling from the client"),
    ("test_streaming_elicitation", "Reports progress, then asks the user"),
    ("test_logging_tool", "Sends log messages"),
    ("test_trigger_tool_change", "Changes the skillset's tool list"),
    ("test_trigger_prompt_change", "Changes the skillset's prompt list"),
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
            "name": "test_input_required_result_prompt",
            "description": "A prompt that asks the user for its context first",
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


def static_abilities() -> list[dict[str, Any]]:
    """The abilities that need no code (an integration defined only through REST)."""
    return [ability for ability in abilities("none") if ability["handler"]["type"] == "static"]


def static_resources() -> list[dict[str, Any]]:
    return [resource for resource in resources("none") if "handler" not in resource]


def static_prompts() -> list[dict[str, Any]]:
    """Every prompt, the worker-built ones as ``{{argument}}`` templates (same messages, no code); the
    argument completions come from the definition's ``meta.completions``."""
    templated: dict[str, dict[str, Any]] = {
        "test_prompt_with_arguments": {
            "messages": [
                {"role": "user", "content": _text("Prompt with arguments: arg1='{{arg1}}', arg2='{{arg2}}'")}
            ],
            "meta": {
                "completions": {
                    "arg1": ["test", "testValue1", "testing", "example"],
                    "arg2": ["test", "testValue2", "other"],
                }
            },
        },
        "test_prompt_with_embedded_resource": {
            "messages": [
                {
                    "role": "user",
                    "content": {
                        "type": "resource",
                        "resource": {
                            # A registered URI must be absolute: the argument goes in the text.
                            "uri": "test://example-resource",
                            "mimeType": "text/plain",
                            "text": "Embedded resource content for testing ({{resourceUri}}).",
                        },
                    },
                },
                {"role": "user", "content": _text("Please process the embedded resource above.")},
            ]
        },
    }
    out = []
    for prompt in prompts("none"):
        if "handler" in prompt:
            if prompt["name"] not in templated:
                continue  # it asks the client something: only code can
            prompt = {key: value for key, value in prompt.items() if key != "handler"}
            prompt.update(templated[prompt["name"]])
        out.append(prompt)
    return out
