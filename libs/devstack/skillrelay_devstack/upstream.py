"""An upstream MCP server for tests and benchmarks of ``mcp`` skillset sources, written with the
official Python SDK (``mcp`` 2.x, a development dependency): it speaks both eras (2026-07-28
stateless and the 2025 sessions) as any server built on the SDK does.

What it offers: ``echo``, ``add`` (structured output), ``count`` (progress and log messages),
``ask_name`` (elicits: a server-to-client request in a 2025 session, ``input_required`` at 2026-07-28),
``ask_twice`` (two questions one after the other with ``ctx.elicit``, 2025 sessions only; notes a call
cancelled while it waits), ``slow`` (for cancellation and timeouts), ``locate`` (an argument mirrored in
the ``Mcp-Param-Region`` header at 2026-07-28), ``touch`` (its resource's subscribers hear
``resources/updated``), ``whoami`` (which headers reached it), ``add_tool`` (changes the tool list:
``subscriptions/listen`` streams hear ``tools/list_changed``); the resource ``upstream://greeting``, the
template ``upstream://items/{item_id}``, the prompt ``greet``.

``UpstreamServer`` runs it under uvicorn on a free port in a thread (like ``EdgeHarness``);
``source_skillset`` turns its catalog into a skillset whose every item is forwarded to it.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from typing import Annotated, Any

import uvicorn
from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve
from pydantic import BaseModel, Field
from sse_starlette.sse import AppStatus

from skillrelay_common.schemas.abilities import (
    AbilityDef,
    McpSourceHandler,
    PromptArgument,
    PromptDef,
    ResourceDef,
    SourceDef,
)
from skillrelay_common.schemas.registry import SkillsetSnapshot
from skillrelay_common.upstream import UpstreamCatalog
from skillrelay_devstack.embedded import free_port


class NameForm(BaseModel):
    name: str


class ColourForm(BaseModel):
    colour: str


class Sum(BaseModel):
    total: int


def _echo(text: str) -> str:
    return text


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

    # Calls of ``ask_twice`` cancelled while waiting for an answer.
    asks_cancelled = threading.Event()
    server.asks_cancelled = asks_cancelled  # type: ignore[attr-defined]

    @server.tool(description="Ask a name, then a colour; answer with both (2025 sessions).")
    async def ask_twice(ctx: Context) -> str:
        try:
            named = await ctx.elicit("What is your name?", NameForm)
            coloured = await ctx.elicit("Which colour?", ColourForm)
        except asyncio.CancelledError:
            asks_cancelled.set()
            raise
        name = named.data.name if named.action == "accept" and named.data else "nobody"
        colour = coloured.data.colour if coloured.action == "accept" and coloured.data else "none"
        return f"{name} likes {colour}"

    # Calls of ``slow`` that ended by cancellation (the client's, relayed by the edge).
    cancelled: list[float] = []
    cancelled_signal = threading.Event()  # set at each (tests wait on it from another thread)
    server.cancelled = cancelled  # type: ignore[attr-defined]
    server.cancelled_signal = cancelled_signal  # type: ignore[attr-defined]
    slow_started = threading.Event()
    server.slow_started = slow_started  # type: ignore[attr-defined]

    @server.tool(description="Wait, then answer (for cancellation and timeouts).")
    async def slow(seconds: float) -> str:
        slow_started.set()
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            cancelled.append(seconds)
            cancelled_signal.set()
            raise
        return f"slept {seconds}"

    @server.tool(description="Say where the text was sent; the region also travels as a header.")
    def locate(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})], text: str) -> str:
        # At 2026-07-28 the SDK refuses a call whose Mcp-Param-Region header is missing or differs.
        return f"{region}: {text}"

    @server.tool(description="Say the resource at `uri` changed (subscribers hear resources/updated).")
    async def touch(uri: str, ctx: Context) -> str:
        await ctx.notify_resource_updated(uri)  # 2026-07-28 subscriptions/listen streams
        return f"touched {uri}"

    @server.tool(description="Which credential header reached the upstream.")
    def whoami(ctx: Context) -> str:
        headers = ctx.headers or {}
        return f"authorization={headers.get('authorization', '')}"

    @server.tool(description="Add a tool named `name` that echoes; listeners hear tools/list_changed.")
    async def add_tool(name: str, ctx: Context) -> str:
        server.add_tool(_echo, name=name, description="Added at run time.")
        await ctx.notify_tools_changed()  # 2026-07-28 subscriptions/listen streams
        return f"added {name}"

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
        # sse-starlette (the SDK's SSE answers) keeps one process-wide "the server is exiting" flag, set
        # by any uvicorn server of the process that stops (an edge harness of an earlier test): left
        # set, every SSE answer of this server would end before its first event.
        AppStatus.should_exit = False
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


def source_skillset(
    skillset_id: str, source: SourceDef, catalog: UpstreamCatalog, *, prefix: str = ""
) -> SkillsetSnapshot:
    """A skillset whose every tool, resource and prompt is forwarded to ``source`` (what the registry's
    snapshot assembly makes of a source's catalog; tests and benchmarks build it directly)."""
    handler = functools.partial(McpSourceHandler, source_id=source.id)
    abilities = [
        AbilityDef(
            id=f"{source.id}_tool_{index}",
            name=prefix + tool["name"],
            description=tool.get("description") or "",
            title=tool.get("title"),
            input_schema=tool.get("inputSchema") or {"type": "object"},
            output_schema=tool.get("outputSchema"),
            annotations=tool.get("annotations"),
            handler=handler(name=tool["name"]),
        )
        for index, tool in enumerate(catalog.tools)
    ]
    resources = [
        ResourceDef(
            id=f"{source.id}_resource_{index}",
            name=item.get("name") or item.get("uri") or item.get("uriTemplate") or "",
            uri=item.get("uri"),
            uri_template=item.get("uriTemplate"),
            description=item.get("description") or "",
            mime_type=item.get("mimeType"),
            handler=handler(name=item.get("uri") or item.get("uriTemplate") or ""),
        )
        for index, item in enumerate([*catalog.resources, *catalog.resource_templates])
    ]
    prompts = [
        PromptDef(
            id=f"{source.id}_prompt_{index}",
            name=prefix + prompt["name"],
            description=prompt.get("description") or "",
            arguments=[
                PromptArgument(
                    name=argument["name"],
                    description=argument.get("description") or "",
                    required=bool(argument.get("required")),
                )
                for argument in prompt.get("arguments") or []
            ],
            handler=handler(name=prompt["name"]),
        )
        for index, prompt in enumerate(catalog.prompts)
    ]
    return SkillsetSnapshot(
        id=skillset_id,
        name="From an upstream",
        revision=1,
        abilities=abilities,
        resources=resources,
        prompts=prompts,
        sources=[source],
    )
