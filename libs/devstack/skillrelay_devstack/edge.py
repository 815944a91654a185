"""An edge replica (uvicorn, in a thread with its own loop) plus a fake registry and auth answering
``REGISTRY_INTEGRATION_RESOLVE`` and ``AUTH_TOKEN_VERIFY`` over real NATS."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import uvicorn

from skillrelay_common.lean_http import LeanHttpToolsProtocol
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.abilities import AbilityDef, PromptDef, ResourceDef
from skillrelay_common.schemas.auth import GetJwks, Jwks, TokenValid, VerifyToken
from skillrelay_common.schemas.base import Denied, NotFound
from skillrelay_common.schemas.registry import (
    IntegrationInfo,
    IntegrationSnapshot,
    ResolveIntegration,
    SkillsetSnapshot,
)
from skillrelay_common.settings import HttpSettings, NatsSettings, Settings
from skillrelay_common.subjects import AUTH_JWKS_GET, AUTH_TOKEN_VERIFY, REGISTRY_INTEGRATION_RESOLVE
from skillrelay_devstack.embedded import free_port
from skillrelay_devstack.raw_mcp import initialize_request as initialize_request  # the harness's tests use it
from skillrelay_edge.app import create_asgi
from skillrelay_edge.calls.context import AbilityRunner

TOKEN = "test-token-1"


def mcp_headers(session: str | None = None, **extra: str) -> dict[str, str]:
    """What an MCP client sends the harness: JSON or SSE accepted, the static ``TOKEN``; with a
    session, its id and protocol version (2025-11-25); ``extra`` added last."""
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "authorization": f"Bearer {TOKEN}",
    }
    if session:
        headers["mcp-session-id"] = session
        headers["mcp-protocol-version"] = "2025-11-25"
    return {**headers, **extra}


def sse_events(text: str) -> list[tuple[str | None, Any]]:
    """(event id, decoded data) of each SSE event with data in a response body."""
    events: list[tuple[str | None, Any]] = []
    for block in text.split("\n\n"):
        event_id, data = None, None
        for line in block.splitlines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: ") and line[6:].strip():
                data = msgspec.json.decode(line[6:])
        if data is not None:
            events.append((event_id, data))
    return events


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="


def ability(name: str, handler: dict[str, Any], **extra: Any) -> AbilityDef:
    raw = {"id": f"ability_{name}", "name": name, "description": f"{name} tool", "handler": handler, **extra}
    raw.setdefault("inputSchema", {"type": "object", "properties": {}})
    return msgspec.convert(raw, AbilityDef)


def demo_skillset(skillset_id: str = "skillset_demo", revision: int = 1) -> SkillsetSnapshot:
    return SkillsetSnapshot(
        id=skillset_id,
        name="Demo",
        description="A demo skillset",
        revision=revision,
        abilities=[
            ability(
                "echo",
                {"type": "static", "content": [{"type": "text", "text": "echo: {{message}}"}]},
                inputSchema={
                    "type": "object",
                    "properties": {"message": {"type": "string"}},
                    "required": ["message"],
                },
            ),
            ability(
                "test_simple_text",
                {
                    "type": "static",
                    "content": [{"type": "text", "text": "This is a simple text response for testing."}],
                },
            ),
            ability(
                "test_multiple_content_types",
                {
                    "type": "static",
                    "content": [
                        {"type": "text", "text": "Multiple content types test:"},
                        {"type": "image", "data": PNG, "mimeType": "image/png"},
                        {"type": "audio", "data": WAV, "mimeType": "audio/wav"},
                        {"type": "resource_link", "uri": "test://static-text", "name": "static"},
                        {
                            "type": "resource",
                            "resource": {"uri": "test://mixed", "mimeType": "application/json", "text": "{}"},
                        },
                    ],
                },
            ),
            ability(
                "test_error_handling",
                {
                    "type": "static",
                    "isError": True,
                    "content": [
                        {"type": "text", "text": "This tool intentionally returns an error for testing"}
                    ],
                },
            ),
            ability(
                "weather",
                {
                    "type": "static",
                    "content": [{"type": "text", "text": "sunny"}],
                    "structuredContent": {"sky": "sunny"},
                },
                outputSchema={"type": "object", "properties": {"sky": {"type": "string"}}},
            ),
            ability("fetch", {"type": "http", "url": "http://127.0.0.1:9/x", "timeoutMs": 2000}),
        ],
        resources=[
            msgspec.convert(
                {
                    "id": "resource_text",
                    "name": "static-text",
                    "uri": "test://static-text",
                    "mimeType": "text/plain",
                    "text": "This is the content of the static text resource.",
                },
                ResourceDef,
            ),
            msgspec.convert(
                {
                    "id": "resource_bin",
                    "name": "static-binary",
                    "uri": "test://static-binary",
                    "mimeType": "image/png",
                    "blob": PNG,
                },
                ResourceDef,
            ),
        ],
        prompts=[
            msgspec.convert(
                {
                    "id": "prompt_args",
                    "name": "test_prompt_with_arguments",
                    "description": "A prompt with arguments",
                    "arguments": [{"name": "arg1", "required": True}, {"name": "arg2", "required": True}],
                    "messages": [
                        {
                            "role": "user",
                            "content": {
                                "type": "text",
                                "text": "Prompt with arguments: arg1='{{arg1}}', arg2='{{arg2}}'",
                            },
                        }
                    ],
                    "meta": {"completions": {"arg1": ["alpha", "beta", "alpine"]}},
                },
                PromptDef,
            )
        ],
    )


# The owner of every integration a ``ControlPlane`` serves (its workers serve under this owner).
DEMO_OWNER = "user_1"


@dataclass
class ControlPlane:
    snapshots: dict[str, IntegrationSnapshot] = field(default_factory=dict)
    tokens: dict[str, tuple[str, int]] = field(default_factory=dict)
    resolves: int = 0

    def add(self, integration_id: str, skillset: SkillsetSnapshot, **info: Any) -> None:
        self.snapshots[integration_id] = IntegrationSnapshot(
            integration=IntegrationInfo(
                id=integration_id, owner_id=DEMO_OWNER, name="demo", skillset_id=skillset.id, **info
            ),
            skillset=skillset,
        )
        self.tokens[integration_id] = (TOKEN, 1)

    async def resolve(self, request: ResolveIntegration) -> IntegrationSnapshot | NotFound:
        self.resolves += 1
        return self.snapshots.get(request.integration_id) or NotFound(what="integration")

    async def verify(self, request: VerifyToken) -> TokenValid | Denied:
        expected = self.tokens.get(request.integration_id)
        if expected is None or expected[0] != request.token:
            return Denied(reason="invalid token")
        return TokenValid(integration_id=request.integration_id, version=expected[1])

    async def jwks(self, request: GetJwks) -> Jwks:
        return Jwks(keys=[])


class EdgeHarness:
    def __init__(
        self,
        nats_url: str,
        control: ControlPlane,
        *,
        local_sessions: bool = True,
        runners: dict[str, AbilityRunner] | None = None,
        sessions_database_url: str | None = None,
        **settings: Any,
    ) -> None:
        """``sessions_database_url``: also run the real sessions service in this harness."""
        self.local_sessions = local_sessions and sessions_database_url is None
        self.runners = runners
        self.sessions_database_url = sessions_database_url
        self.nats_url = nats_url
        self.control = control
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = Settings(
            nats=NatsSettings(url=nats_url),
            http=HttpSettings(edge_port=self.port, edge_public_url=self.url),
            **settings,
        )
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def mcp_url(self, integration_id: str) -> str:
        return f"{self.url}/api/v1/integration/mcpserver/{integration_id}/mcp"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not (self._server is not None and self._server.started):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("edge did not start")
            time.sleep(0.02)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        bus = await Bus.connect(self.nats_url, "fakes")
        bus.serve(REGISTRY_INTEGRATION_RESOLVE, self.control.resolve)
        bus.serve(AUTH_TOKEN_VERIFY, self.control.verify)
        bus.serve(AUTH_JWKS_GET, self.control.jwks)
        await bus.start()
        async with contextlib.AsyncExitStack() as stack:
            if self.sessions_database_url is not None:
                from skillrelay_devstack.sessions import ManualClock, running_sessions

                await stack.enter_async_context(
                    running_sessions(self.nats_url, self.sessions_database_url, ManualClock(time.time()))
                )
            await self._serve()
        await bus.close()

    async def _serve(self) -> None:
        app = create_asgi(self.settings, local_sessions=self.local_sessions, runners=self.runners)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
            http=LeanHttpToolsProtocol,  # as the edge process serves (skillrelay_common.runtime)
        )
        self._server = uvicorn.Server(config)
        await self._server.serve()

    def stop(self) -> None:
        if self._server is not None:
            self._server.handle_exit(signal.SIGTERM, None)  # as a signal would (ends SSE streams at once)
        if self._thread is not None:
            self._thread.join(20)


@contextlib.contextmanager
def two_replicas(
    nats_url: str, control: ControlPlane, sessions_database_url: str, **options: Any
) -> Iterator[list[EdgeHarness]]:
    """Two edge replicas of one deployment: the first also runs the real sessions service (on
    ``sessions_database_url``), which both use. ``options`` go to both harnesses."""
    first = EdgeHarness(nats_url, control, sessions_database_url=sessions_database_url, **options)
    second = EdgeHarness(nats_url, control, local_sessions=False, **options)
    first.start()
    try:
        second.start()
        try:
            yield [first, second]
        finally:
            second.stop()
    finally:
        first.stop()
