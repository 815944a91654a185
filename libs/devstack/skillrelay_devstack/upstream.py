"""An upstream MCP server for tests and benchmarks of ``mcp`` skillset sources, written with the
official Python SDK (``mcp`` 2.x, a development dependency): it speaks both eras (2026-07-28
stateless and the 2025 sessions) as any server built on the SDK does.

What it offers: ``echo``, ``add`` (structured output), ``count`` (progress and log messages),
``ask_name`` (elicits: a server-to-client request in a 2025 session, ``input_required`` at
2026-07-28), ``slow`` (for cancellation and timeouts), ``whoami`` (which headers reached it); the
resource ``upstream://greeting``, the template ``upstream://items/{item_id}``, the prompt ``greet``.

``UpstreamServer`` runs it under uvicorn on a free port in a thread (like ``EdgeHarness``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Annotated, Any

import uvicorn
from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve
from pydantic import BaseModel

from skillrelay_devstack.embedded import free_port


class NameForm(BaseModel):
    name: str


class Sum(BaseModel):
    total: int


def _ask_for_name() -> Elicit[NameForm]:
    return Elicit("What is your name?", NameForm)


async def _log(ctx: Context, level: Any, data: Any) -> None:
    """``notifications/message`` on the call's stream. The SDK marks logging deprecated at 2026-07-28
    (SEP-2577) but still serves it; its undecorated function skips the warning (an error in tests)."""
    session = ctx.request_context.session
    await type(session).send_log_message.__wrapped__(  # type: ignore[attr-defined]
        session, level=level, data=data, related_request_id=ctx.request_id
    )


def build_upstream(name: str = "upstream") -> MCPServer:
    server = MCPServer(name, version="1.0.0")
    # Headers of the last request (lower-cased names): tests check what the edge forwarded.
    seen: dict[str, str] = {}
    server.seen_headers = seen  # type: ignore[attr-defined]

    @server.tool(description="Echo the text back.")
    def echo(text: str) -> str:
        return text

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> Sum:
        return Sum(total=a + b)

    @server.tool(description="Count to steps, reporting progress and a log message at each step.")
    async def count(steps: int, ctx: Context) -> str:
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps, f"step {step}")
            await _log(ctx, "info", f"counted {step}")
        return f"counted to {steps}"

    @server.tool(description="Ask the user's name and greet them.")
    async def ask_name(form: Annotated[NameForm, Resolve(_ask_for_name)]) -> str:
        return f"Hello, {form.name}!"

    @server.tool(description="Wait, then answer (for cancellation and timeouts).")
    async def slow(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return f"slept {seconds}"

    @server.tool(description="Which credential header reached the upstream.")
    def whoami(ctx: Context) -> str:
        headers = ctx.headers or {}
        return f"authorization={headers.get('authorization', '')}"

    @server.resource("upstream://greeting", mime_type="text/plain", description="A fixed greeting.")
    def greeting() -> str:
        return "hello from upstream"

    @server.resource("upstream://items/{item_id}", mime_type="text/plain", description="One item.")
    def item(item_id: str) -> str:
        return f"item {item_id}"

    @server.prompt(description="Greet someone.")
    def greet(name: str) -> str:
        return f"Please greet {name} warmly."

    return server


class UpstreamServer:
    """``build_upstream()`` served on ``http://127.0.0.1:{port}/mcp`` from a thread."""

    def __init__(self, name: str = "upstream") -> None:
        self.server = build_upstream(name)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self._thread: threading.Thread | None = None
        self._uvicorn: uvicorn.Server | None = None

    def start(self) -> UpstreamServer:
        app = self.server.streamable_http_app()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(target=asyncio.run, args=(self._uvicorn.serve(),), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._uvicorn.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the upstream MCP server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> UpstreamServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
