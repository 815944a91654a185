"""A worker process for the reliability tests: ``python reliability_worker.py <nats_url> <subject>``, with
its owner's worker credential in ``SKILLRELAY_WORKER_CREDENTIAL``.

Tools: ``echo`` (answers at once), ``hang`` (never finishes on its own), ``count`` (``steps``
progress notifications ``interval`` seconds apart, then the number of steps)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from skillrelay_worker import Worker, WorkerContext


def build(subject: str) -> Worker:
    worker = Worker(subject, shutdown_grace=1.0)

    @worker.tool("echo")
    async def echo(ctx: WorkerContext, args: dict[str, Any]) -> str:
        return str(args.get("text", "echo"))

    @worker.tool("hang")
    async def hang(ctx: WorkerContext, args: dict[str, Any]) -> str:
        await asyncio.Event().wait()
        return "never"

    @worker.tool("count")
    async def count(ctx: WorkerContext, args: dict[str, Any]) -> str:
        steps = int(args.get("steps", 10))
        for step in range(1, steps + 1):
            await asyncio.sleep(float(args.get("interval", 0.2)))
            await ctx.report_progress(step, steps, f"step {step}")
        return str(steps)

    return worker


if __name__ == "__main__":
    build(sys.argv[2]).run(sys.argv[1])
