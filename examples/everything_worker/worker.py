"""The worker-backed parts of the everything skillset: what needs code (logging, progress, sampling,
elicitation, a templated resource, prompts built from arguments, completion). The fixed parts are
``static`` abilities, resources and prompts (see ``skillset.py``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from everything_worker.modern import SkillsetEditor, modern_tools
from everything_worker.tasks import task_tools
from skillrelay_worker import ToolResult, Worker, WorkerContext, embedded_resource, text

DEFAULT_SUBJECT = "everything"
STEP_DELAY = 0.05

# elicitation-sep1034-defaults: one property per primitive type, each with a default.
SEP1034_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
    "required": [],
}

# elicitation-sep1330-enums: the five enum shapes of SEP-1330.
SEP1330_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "untitledSingle": {
            "type": "string",
            "description": "Untitled single-select enum",
            "enum": ["option1", "option2", "option3"],
        },
        "titledSingle": {
            "type": "string",
            "description": "Titled single-select enum",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "description": "Legacy enum with enumNames",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "description": "Untitled multi-select enum",
            "minItems": 1,
            "maxItems": 3,
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "description": "Titled multi-select enum",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
    "required": [],
}

USER_INFO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}

COMPLETIONS: dict[str, list[str]] = {
    "arg1": ["test", "testValue1", "testing", "example"],
    "arg2": ["test", "testValue2", "other"],
}


def build_worker(
    subject: str = DEFAULT_SUBJECT,
    skillset_editor: SkillsetEditor | None = None,
    *,
    credential: str | None = None,
) -> Worker:
    """``skillset_editor``: how the trigger tools change their own skillset (through the REST API);
    without one they answer with an error."""
    worker = Worker(subject, credential=credential)
    modern_tools(worker, skillset_editor)
    task_tools(worker)

    @worker.tool("test_tool_with_logging")
    async def tool_with_logging(ctx: WorkerContext, args: dict[str, Any]) -> str:
        await ctx.log("info", "Tool execution started")
        await asyncio.sleep(STEP_DELAY)
        await ctx.log("info", "Tool processing data")
        await asyncio.sleep(STEP_DELAY)
        await ctx.log("info", "Tool execution completed")
        return "Tool with logging executed successfully"

    @worker.tool("test_tool_with_progress")
    async def tool_with_progress(ctx: WorkerContext, args: dict[str, Any]) -> str:
        for step, progress in enumerate((0, 50, 100)):
            if step:
                await asyncio.sleep(STEP_DELAY)
            await ctx.report_progress(progress, 100, f"Completed step {progress} of 100")
        return str(ctx.call.progress_token) if ctx.call.progress_token is not None else "done"

    @worker.tool("test_sampling")
    async def sampling(ctx: WorkerContext, args: dict[str, Any]) -> str:
        answer = await ctx.sample(str(args.get("prompt", "")), 100)
        content = answer.get("content")
        said = content.get("text", "") if isinstance(content, dict) else json.dumps(content)
        return f"LLM response: {said}"

    @worker.tool("test_elicitation")
    async def elicitation(ctx: WorkerContext, args: dict[str, Any]) -> str:
        answer = await ctx.elicit(
            str(args.get("message", "Please provide your information")), USER_INFO_SCHEMA
        )
        return (
            f"User response: action={answer.get('action')}, content={json.dumps(answer.get('content', {}))}"
        )

    @worker.tool("test_elicitation_sep1034_defaults")
    async def elicitation_defaults(ctx: WorkerContext, args: dict[str, Any]) -> str:
        answer = await ctx.elicit("Please review and update the form fields with defaults", SEP1034_SCHEMA)
        return _elicitation_summary("Elicitation completed", answer)

    @worker.tool("test_elicitation_sep1330_enums")
    async def elicitation_enums(ctx: WorkerContext, args: dict[str, Any]) -> str:
        answer = await ctx.elicit("Please select options from the enum fields", SEP1330_SCHEMA)
        return _elicitation_summary("Elicitation completed", answer)

    @worker.tool("test_reconnection")
    async def reconnection(ctx: WorkerContext, args: dict[str, Any]) -> str:
        await asyncio.sleep(STEP_DELAY)
        return (
            "Reconnection test completed successfully. If you received this, the client properly "
            "reconnected after stream closure."
        )

    @worker.tool("json_schema_2020_12_tool")
    async def json_schema_tool(ctx: WorkerContext, args: dict[str, Any]) -> str:
        return f"JSON Schema 2020-12 tool called with: {json.dumps(args)}"

    @worker.tool("test_roots")
    async def roots(ctx: WorkerContext, args: dict[str, Any]) -> ToolResult:
        listed = await ctx.list_roots()
        return ToolResult([text(json.dumps(listed))], structured_content={"roots": listed})

    @worker.resource_template("test://template/{id}/data", mime_type="application/json")
    async def template_data(ctx: WorkerContext, uri: str, params: dict[str, str]) -> str:
        return json.dumps({"id": params["id"], "templateTest": True, "data": f"Data for ID: {params['id']}"})

    @worker.prompt("test_prompt_with_arguments", description="A prompt with required arguments")
    async def prompt_with_arguments(ctx: WorkerContext, args: dict[str, str]) -> list[dict[str, Any]]:
        message = f"Prompt with arguments: arg1='{args.get('arg1', '')}', arg2='{args.get('arg2', '')}'"
        return [{"role": "user", "content": text(message)}]

    @worker.prompt(
        "test_prompt_with_embedded_resource", description="A prompt that includes an embedded resource"
    )
    async def prompt_with_resource(ctx: WorkerContext, args: dict[str, str]) -> list[dict[str, Any]]:
        uri = args.get("resourceUri", "test://example-resource")
        return [
            {
                "role": "user",
                "content": embedded_resource(uri, text="Embedded resource content for testing."),
            },
            {"role": "user", "content": text("Please process the embedded resource above.")},
        ]

    @worker.completion("test_prompt_with_arguments")
    async def complete_arguments(
        ctx: WorkerContext, argument: str, value: str, context: dict[str, str]
    ) -> list[str]:
        return [option for option in COMPLETIONS.get(argument, []) if option.startswith(value)]

    return worker


def _elicitation_summary(prefix: str, answer: dict[str, Any]) -> str:
    return f"{prefix}: action={answer.get('action')}, content={json.dumps(answer.get('content', {}))}"
