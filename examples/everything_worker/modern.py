"""The everything worker's tools for the 2026-07-28 suite. Handlers ask the client with
``ctx.elicit`` / ``ctx.sample`` / ``ctx.list_roots`` exactly as for a 2025 client: the edge turns each
question into an ``input_required`` result for a 2026 client, and the client's retry answers it here
(``key`` names the question in ``inputRequests``)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

from skillrelay_worker import ToolError, Worker, WorkerContext, text

NAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
}
CONFIRM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
}


@dataclass(frozen=True)
class SkillsetEditor:
    """Changes the worker's own skillset through the REST API (the owner's API key)."""

    registry_url: str
    api_key: str
    skillset_id: str

    async def touch(self, family: str, name: str) -> None:
        """Update one ability or prompt (its description), so the skillset's list changes."""
        headers = {"Authorization": f"Bearer {self.api_key}"}
        base = f"{self.registry_url.rstrip('/')}/api/v1/skillset/{self.skillset_id}/{family}"
        async with httpx.AsyncClient(timeout=10) as client:
            listed = await client.get(f"{base}/list", headers=headers, params={"take": 100})
            listed.raise_for_status()
            found = next(item for item in listed.json()["items"] if item["name"] == name)
            description = "changed" if found["description"] != "changed" else "changed again"
            updated = await client.post(
                f"{base}/{found['id']}/update", headers=headers, json={"description": description}
            )
            updated.raise_for_status()


def _answered(answer: dict[str, Any]) -> dict[str, Any]:
    content = answer.get("content")
    return content if isinstance(content, dict) else {}


def modern_tools(worker: Worker, editor: SkillsetEditor | None) -> None:
    @worker.tool("test_input_required_result_elicitation")
    async def ask_name(ctx: WorkerContext, args: dict[str, Any]) -> str:
        answer = await ctx.elicit("What is your name?", NAME_SCHEMA, key="user_name")
        return f"Hello, {_answered(answer).get('name', 'stranger')}!"

    @worker.tool("test_input_required_result_sampling")
    async def ask_model(ctx: WorkerContext, args: dict[str, Any]) -> str:
        answer = await ctx.sample("What is the capital of France?", 100, key="capital_question")
        content = answer.get("content")
        return f"The model said: {content.get('text', '') if isinstance(content, dict) else content}"

    @worker.tool("test_input_required_result_list_roots")
    async def ask_roots(ctx: WorkerContext, args: dict[str, Any]) -> str:
        roots = await ctx.list_roots(key="client_roots")
        return f"The client's roots: {json.dumps(roots)}"

    @worker.tool("test_input_required_result_request_state")
    async def ask_confirmation(ctx: WorkerContext, args: dict[str, Any]) -> str:
        answer = await ctx.elicit("Please confirm", CONFIRM_SCHEMA, key="confirm")
        # The edge verified the requestState before this handler could go on: state-ok.
        return f"state-ok: confirmed={_answered(answer).get('ok')}"

    @worker.tool("test_input_required_result_tampered_state")
    async def ask_confirmation_again(ctx: WorkerContext, args: dict[str, Any]) -> str:
        answer = await ctx.elicit("Please confirm", CONFIRM_SCHEMA, key="confirm")
        return f"confirmed={_answered(answer).get('ok')}"

    @worker.tool("test_input_required_result_multiple_inputs")
    async def ask_three(ctx: WorkerContext, args: dict[str, Any]) -> str:
        name, greeting, roots = await asyncio.gather(
            ctx.elicit("What is your name?", NAME_SCHEMA, key="user_name"),
            ctx.sample("Generate a greeting", 50, key="greeting"),
            ctx.list_roots(key="client_roots"),
        )
        said = greeting.get("content")
        said_text = said.get("text", "") if isinstance(said, dict) else ""
        return f"{said_text} {_answered(name).get('name', '')} ({len(roots)} roots)"

    @worker.tool("test_input_required_result_multi_round")
    async def ask_twice(ctx: WorkerContext, args: dict[str, Any]) -> str:
        name = await ctx.elicit("Step 1: What is your name?", NAME_SCHEMA, key="step1")
        color_schema = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
        color = await ctx.elicit("Step 2: What is your favorite color?", color_schema, key="step2")
        return f"{_answered(name).get('name')} likes {_answered(color).get('color')}"

    @worker.tool("test_input_required_result_capabilities")
    async def ask_what_it_can(ctx: WorkerContext, args: dict[str, Any]) -> str:
        declared = ctx.client_capabilities
        questions = []
        if "sampling" in declared:
            questions.append(ctx.sample("Say something", 20, key="sampled"))
        if "elicitation" in declared:
            questions.append(ctx.elicit("What is your name?", NAME_SCHEMA, key="user_name"))
        answers = await asyncio.gather(*questions)
        return f"{len(answers)} answers"

    @worker.tool("test_missing_capability")
    async def needs_sampling(ctx: WorkerContext, args: dict[str, Any]) -> str:
        answer = await ctx.sample("This needs the client's sampling capability", 20)
        return json.dumps(answer.get("content"))

    @worker.tool("test_streaming_elicitation")
    async def progress_then_ask(ctx: WorkerContext, args: dict[str, Any]) -> str:
        await ctx.report_progress(1, 2, "about to ask")
        answer = await ctx.elicit("What is your name?", NAME_SCHEMA, key="user_name")
        return f"Hello, {_answered(answer).get('name', 'stranger')}!"

    @worker.tool("test_logging_tool")
    async def logs(ctx: WorkerContext, args: dict[str, Any]) -> str:
        for message in ("starting", "working", "done"):
            await ctx.log("info", message)
        return "logged three messages"

    @worker.tool("test_trigger_tool_change")
    async def change_tools(ctx: WorkerContext, args: dict[str, Any]) -> str:
        if editor is None:
            raise ToolError("this worker was started without access to its skillset")
        await editor.touch("ability", "test_trigger_tool_change")
        return "the tool list changed"

    @worker.tool("test_trigger_prompt_change")
    async def change_prompts(ctx: WorkerContext, args: dict[str, Any]) -> str:
        if editor is None:
            raise ToolError("this worker was started without access to its skillset")
        await editor.touch("prompt", "test_input_required_result_prompt")
        return "the prompt list changed"

    @worker.prompt("test_input_required_result_prompt", description="Asks the user for its context first")
    async def prompt_with_context(ctx: WorkerContext, args: dict[str, str]) -> list[dict[str, Any]]:
        context_schema = {
            "type": "object",
            "properties": {"context": {"type": "string"}},
            "required": ["context"],
        }
        answer = await ctx.elicit("What context should the prompt use?", context_schema, key="user_context")
        return [
            {"role": "user", "content": text(f"Use this context: {_answered(answer).get('context', '')}")}
        ]
