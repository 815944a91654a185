"""An OpenAPI source end to end: a small local HTTP service's OpenAPI document, read by the registry
over HTTP, becomes tools that the official MCP Python SDK client lists and calls through the edge,
which calls the service with the source's own API key (never the client's token). The whole stack
runs as processes, with private targets allowed (the service is on loopback)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import mcp.types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from skillrelay_devstack.pet_api import API_KEY, PetApi
from skillrelay_devstack.stack import Stack

pytestmark = pytest.mark.slow
WAIT = 20.0


@pytest.fixture
def stack_env() -> dict[str, str]:
    return {"SKILLRELAY_ALLOW_PRIVATE_HTTP_TARGETS": "true"}  # the pet API listens on 127.0.0.1


@asynccontextmanager
async def connect(endpoint: str, token: str) -> AsyncIterator[ClientSession]:
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
        streamable_http_client(endpoint, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await asyncio.wait_for(session.initialize(), WAIT)
        yield session


async def test_openapi_operations_become_tools_called_through_the_edge(stack: Stack, pet_api: PetApi) -> None:
    async with httpx.AsyncClient(base_url=stack.registry_url, timeout=30) as registry:
        user = await registry.post(
            "/api/v1/user/create",
            json={"name": f"e2e-{uuid.uuid4().hex[:6]}"},
            headers={"authorization": f"Bearer {stack.admin_token}"},
        )
        registry.headers["authorization"] = f"Bearer {user.json()['apiKey']}"
        skillset = (await registry.post("/api/v1/skillset/create", json={"name": "pets"})).json()["id"]
        source = await registry.post(
            f"/api/v1/skillset/{skillset}/source/create",
            json={
                "type": "openapi",
                "url": pet_api.document_url,
                "baseUrl": pet_api.url,
                "headers": {"X-Api-Key": API_KEY},
                "prefix": "pets_",
            },
        )
        assert source.status_code == 200, source.text
        source_id = source.json()["id"]
        created = await registry.post(
            "/api/v1/integration/mcpserver/create", json={"name": "pets", "skillsetId": skillset}
        )
        assert created.status_code == 200, created.text
        token, endpoint = created.json()["accessToken"], created.json()["endpoint"]

        async with connect(endpoint, token) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            assert set(tools) == {"pets_listPets", "pets_addPet", "pets_getPet", "pets_removePet"}
            assert tools["pets_getPet"].input_schema["required"] == ["petId"]
            assert tools["pets_getPet"].output_schema is not None

            listed = await session.call_tool("pets_listPets", {"limit": 1, "X-Request-Tag": "e2e"})
            assert not listed.is_error, listed
            assert listed.structured_content == {"pets": [{"id": 1, "name": "Rex", "tag": "dog"}]}
            seen = pet_api.requests[-1]
            assert (seen["method"], seen["path"], seen["query"]) == ("GET", "/pets", {"limit": ["1"]})
            assert seen["headers"]["x-api-key"] == API_KEY and seen["headers"]["x-request-tag"] == "e2e"
            assert "authorization" not in seen["headers"]  # the client's token never leaves the edge

            added = await session.call_tool("pets_addPet", {"body": {"name": "Tom", "tag": "cat"}})
            assert not added.is_error, added
            assert added.structured_content == {"id": 2, "name": "Tom", "tag": "cat"}
            assert pet_api.requests[-1]["body"] == {"name": "Tom", "tag": "cat"}

            fetched = await session.call_tool("pets_getPet", {"petId": 2})
            assert fetched.structured_content == {"id": 2, "name": "Tom", "tag": "cat"}
            missing = await session.call_tool("pets_getPet", {"petId": 99})
            assert missing.is_error and "HTTP 404" in _text(missing)
            removed = await session.call_tool("pets_removePet", {"petId": 2})
            assert not removed.is_error and 2 not in pet_api.pets
            bad = await session.call_tool("pets_getPet", {"petId": "not a number"})
            assert bad.is_error  # the edge checks arguments against the operation's schema first

            # The owner narrows the source: the edge reloads the skillset and lists fewer tools.
            narrowed = await registry.post(
                f"/api/v1/skillset/{skillset}/source/{source_id}/update", json={"include": ["getPet"]}
            )
            assert narrowed.status_code == 200, narrowed.text
            for _ in range(100):
                names = {tool.name for tool in (await session.list_tools()).tools}
                if names == {"pets_getPet"}:
                    break
                await asyncio.sleep(0.1)
            assert names == {"pets_getPet"}

        # Audit records of calls through the source name it.
        audit = f"/api/v1/integration/mcpserver/{created.json()['id']}/audit/list"
        sourced: list[dict[str, object]] = []
        for _ in range(100):
            items = (await registry.get(audit, params={"take": "100"})).json()["items"]
            sourced = [i["data"]["details"] for i in items if i["data"]["kind"] == "tool.call"]
            if len(sourced) >= 6:
                break
            await asyncio.sleep(0.2)
        assert sourced and all(details.get("source") == source_id for details in sourced), sourced
        assert API_KEY not in str(items)


def _text(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))
