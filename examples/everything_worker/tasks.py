"""Tools of the Tasks extension (2026-07-28, ``io.modelcontextprotocol/tasks``), named as the
conformance suite's task scenarios expect. Each goes on as a task with ``ctx.start_task()`` when the
client can take one (else it simply answers, or for ``taskSupport: "required"`` the edge refuses)."""

from __future__ import annotations

import asyncio
from typing import Any

from skillrelay_worker import HandlerError, ToolError, Worker, WorkerContext

CONFIRM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"confirm": {"type": "boolean", "description": "Go ahead?"}},
    "required": ["confirm"],
}
NAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string", "description": "Your name"}},
    "required": ["name"],
}
# The longest a task tool may run (its ability's timeoutMs): slow_compute is asked for 60 s.
TASK_TIMEOUT_MS = 120_000


def _content(answer: dict[str, Any]) -> dict[str, Any]:
    content = answer.get("content")
    return content if isinstance(content, dict) else {}


def task_tools(worker: Worker) -> None:
    @worker.tool("slow_compute")
    async def slow_compute(ctx: WorkerContext, args: dict[str, Any]) -> str:
        seconds = float(args.get("seconds", 1))
        await ctx.start_task(f"computing {args.get('label', '')}".strip())
        await asyncio.sleep(max(0.0, min(seconds, TASK_TIMEOUT_MS / 1000)))
        return f"Computed {args.get('label', 'result')} in {seconds:g}s"

    @worker.tool("failing_job")
    async def failing_job(ctx: WorkerContext, args: dict[str, Any]) -> str:
        await ctx.start_task("working on a job that will fail")
        await asyncio.sleep(1.0)
        raise ToolError("The job failed: the input could not be processed")

    @worker.tool("protocol_error_job")
    async def protocol_error_job(ctx: WorkerContext, args: dict[str, Any]) -> str:
        await ctx.start_task()
        raise HandlerError("The job could not run: its backend refused it")

    @worker.tool("confirm_delete")
    async def confirm_delete(ctx: WorkerContext, args: dict[str, Any]) -> str:
        filename = str(args.get("filename", "the file"))
        await ctx.start_task(f"waiting for confirmation to delete {filename}")
        answer = await ctx.elicit(f"Delete {filename}?", CONFIRM_SCHEMA)
        confirmed = answer.get("action") == "accept" and _content(answer).get("confirm") is True
        return f"Deleted {filename}" if confirmed else f"Kept {filename}"

    @worker.tool("multi_input")
    async def multi_input(ctx: WorkerContext, args: dict[str, Any]) -> str:
        await ctx.start_task("waiting for two answers")
        name, confirm = await asyncio.gather(
            ctx.elicit("What is your name?", NAME_SCHEMA), ctx.elicit("Go ahead?", CONFIRM_SCHEMA)
        )
        return f"name={_content(name).get('name')}, confirm={_content(confirm).get('confirm')}"

    @worker.tool("test_tool_with_task")
    async def tool_with_task(ctx: WorkerContext, args: dict[str, Any]) -> str:
        # Asked before the task (a multi round-trip request), then the rest runs as a task.
        answer = await ctx.elicit("What is your name?", NAME_SCHEMA, key="user_name")
        await ctx.start_task("greeting")
        await asyncio.sleep(0.2)
        return f"Hello, {_content(answer).get('name', 'stranger')}!"
