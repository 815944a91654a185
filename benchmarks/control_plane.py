"""Stand-ins for the registry and auth during the benchmark: ``python -m benchmarks.control_plane
<nats_url> <integration_id> <token> <upstream_url> [<mcp_upstream_url>]`` answers
``REGISTRY_INTEGRATION_RESOLVE`` (a skillset with an ``echo`` tool as a static, a worker and an http
ability calling ``upstream_url``, and ``echo_source`` forwarded to the MCP server at
``mcp_upstream_url`` through an ``mcp`` skillset source, with the token as the source's header) and
``AUTH_TOKEN_VERIFY``. Both are only asked on cache misses, so they do not sit on the measured path;
sessions use the real sessions service."""

from __future__ import annotations

import sys

import msgspec

from skillrelay_common.messaging import Bus
from skillrelay_common.runtime import run_until_signalled
from skillrelay_common.schemas.abilities import AbilityDef, McpSourceHandler, SourceDef
from skillrelay_common.schemas.auth import GetJwks, Jwks, TokenValid, VerifyToken
from skillrelay_common.schemas.base import Denied, NotFound
from skillrelay_common.schemas.registry import (
    MAX_SESSIONS_LIMIT,
    IntegrationInfo,
    IntegrationSnapshot,
    ResolveIntegration,
    SkillsetSnapshot,
)
from skillrelay_common.subjects import AUTH_JWKS_GET, AUTH_TOKEN_VERIFY, REGISTRY_INTEGRATION_RESOLVE

ECHO_SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
WORKER_SUBJECT = "bench.echo"
# The owner of the benchmark's integration: its worker serves ``worker.<owner>.<subject>``.
OWNER_ID = "user_bench"


def snapshot(
    integration_id: str, upstream_url: str, mcp_upstream_url: str | None = None, token: str = ""
) -> IntegrationSnapshot:
    def tool(name: str, handler: dict[str, object]) -> AbilityDef:
        raw = {
            "id": f"ability_{name}",
            "name": name,
            "description": "Echo the input text.",
            "inputSchema": ECHO_SCHEMA,
            "handler": handler,
        }
        return msgspec.convert(raw, AbilityDef)

    abilities = [
        tool("echo", {"type": "static", "content": [{"type": "text", "text": "{{text}}"}]}),
        tool("echo_worker", {"type": "worker", "subject": WORKER_SUBJECT}),
        tool("echo_http", {"type": "http", "url": upstream_url}),
    ]
    sources: list[SourceDef] = []
    if mcp_upstream_url:
        source = SourceDef(
            id="source_bench",
            type="mcp",
            name="bench-upstream",
            url=mcp_upstream_url,
            headers={"Authorization": f"Bearer {token}"},
        )
        sources.append(source)
        handler = McpSourceHandler(source_id=source.id, name="echo")
        abilities.append(
            AbilityDef(
                id="ability_echo_source",
                name="echo_source",
                description="Echo the input text (forwarded to the upstream).",
                input_schema=ECHO_SCHEMA,
                handler=handler,
            )
        )
    return IntegrationSnapshot(
        integration=IntegrationInfo(
            id=integration_id,
            owner_id=OWNER_ID,
            name="bench",
            skillset_id="skillset_bench",
            max_sessions=MAX_SESSIONS_LIMIT,
        ),
        skillset=SkillsetSnapshot(
            id="skillset_bench",
            name="bench",
            abilities=abilities,
            sources=sources,
        ),
    )


def main() -> None:
    nats_url, integration_id, token, upstream_url = sys.argv[1:5]
    mcp_upstream_url = sys.argv[5] if len(sys.argv) > 5 else None
    holder: dict[str, Bus] = {}

    def known(asked: str) -> bool:
        # ``<id>`` and ``<id>_<n>``: the scale benchmark spreads its clients over several integrations
        # of one skillset (an integration keeps at most MAX_SESSIONS_LIMIT live sessions).
        return asked == integration_id or asked.startswith(f"{integration_id}_")

    async def resolve(request: ResolveIntegration) -> IntegrationSnapshot | NotFound:
        if not known(request.integration_id):
            return NotFound(what="integration")
        return snapshot(request.integration_id, upstream_url, mcp_upstream_url, token)

    async def verify(request: VerifyToken) -> TokenValid | Denied:
        if known(request.integration_id) and request.token == token:
            return TokenValid(integration_id=request.integration_id, version=1)
        return Denied(reason="invalid token")

    async def jwks(request: GetJwks) -> Jwks:
        return Jwks(keys=[])

    async def start() -> None:
        bus = await Bus.connect(nats_url, "bench-control")
        bus.serve(REGISTRY_INTEGRATION_RESOLVE, resolve)
        bus.serve(AUTH_TOKEN_VERIFY, verify)
        bus.serve(AUTH_JWKS_GET, jwks)
        await bus.start()
        holder["bus"] = bus

    async def stop() -> None:
        await holder["bus"].close()

    run_until_signalled(start, stop)


if __name__ == "__main__":
    main()
