"""The ``openapi`` runner against a real local HTTP service: how arguments fill the path, query,
headers and body, the source's headers winning, and the failures a client sees as tool errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from prometheus_client import REGISTRY

from skillrelay_common.outbound import OutboundClient, TargetCache
from skillrelay_common.schemas.abilities import AbilityDef, OpenApiHandler, OpenApiParameter, SourceDef
from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_devstack.embedded import free_port
from skillrelay_devstack.pet_api import API_KEY, PetApi
from skillrelay_edge.abilities.openapi import OpenApiRunner
from skillrelay_edge.access.credentials import Principal
from skillrelay_edge.calls.context import AbilityError, CallContext

INTEGRATION = IntegrationInfo(id="mcpserver_1", owner_id="user_1", name="n", skillset_id="skillset_1")
LIST = OpenApiHandler(
    source_id="source_1",
    operation_id="listPets",
    method="GET",
    path="/pets",
    parameters=[
        OpenApiParameter(name="limit", location="query"),
        OpenApiParameter(name="X-Request-Tag", location="header"),
        OpenApiParameter(name="X-Api-Key", location="header"),
    ],
)
GET = OpenApiHandler(
    source_id="source_1",
    operation_id="getPet",
    method="GET",
    path="/pets/{petId}",
    parameters=[OpenApiParameter(name="petId", location="path")],
)
ADD = OpenApiHandler(source_id="source_1", operation_id="addPet", method="POST", path="/pets", has_body=True)


@pytest.fixture
def pet_api() -> Iterator[PetApi]:
    api = PetApi().start()
    yield api
    api.stop()


@pytest.fixture
async def runner() -> AsyncIterator[OpenApiRunner]:
    client = OutboundClient(TargetCache(allow_private=True))
    yield OpenApiRunner(client)
    await client.aclose()


def _ctx(source: SourceDef | None, handler: OpenApiHandler, *, output: bool = True) -> CallContext:
    target = AbilityDef(
        id="source_1:x",
        name=handler.operation_id,
        handler=handler,
        output_schema={"type": "object"} if output else None,
    )
    return CallContext(
        method="tools/call",
        name=handler.operation_id,
        integration=INTEGRATION,
        principal=Principal("static", "static:v1", 1),
        target=target,
        source=source,
    )


def _source(base_url: str) -> SourceDef:
    return SourceDef(
        id="source_1", type="openapi", name="pets", base_url=base_url, headers={"X-Api-Key": API_KEY}
    )


async def test_arguments_go_to_path_query_headers_and_body(runner: OpenApiRunner, pet_api: PetApi) -> None:
    source = _source(pet_api.url + "/")
    listed = await runner.run(
        _ctx(source, LIST), LIST, {"limit": 5, "X-Request-Tag": "a b", "X-Api-Key": "the client's guess"}
    )
    assert listed["structuredContent"] == {"pets": [{"id": 1, "name": "Rex", "tag": "dog"}]}
    seen = pet_api.requests[-1]
    assert seen["path"] == "/pets" and seen["query"] == {"limit": ["5"]}
    assert seen["headers"]["x-request-tag"] == "a b" and seen["headers"]["x-api-key"] == API_KEY

    added = await runner.run(_ctx(source, ADD), ADD, {"body": {"name": "Ann/1"}})
    assert added["structuredContent"]["name"] == "Ann/1"
    assert pet_api.requests[-1]["headers"]["content-type"] == "application/json"
    fetched = await runner.run(
        _ctx(source, GET, output=False), GET, {"petId": added["structuredContent"]["id"]}
    )
    assert "structuredContent" not in fetched and "Ann/1" in fetched["content"][0]["text"]

    with pytest.raises(AbilityError, match="HTTP 404"):
        await runner.run(_ctx(source, GET), GET, {"petId": "../openapi.json"})  # one encoded segment
    assert pet_api.requests[-1]["path"] == "/pets/..%2Fopenapi.json"


def _calls(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "skillrelay_source_calls_total", {"source": "source_1", "method": "tools/call", "outcome": outcome}
    )
    return value or 0.0


async def test_failures_are_tool_errors(runner: OpenApiRunner, pet_api: PetApi) -> None:
    errors, unreachable = _calls("error"), _calls("unreachable")
    with pytest.raises(AbilityError, match="not available"):
        await runner.run(_ctx(None, GET), GET, {"petId": 1})
    with pytest.raises(AbilityError, match="'petId' is required"):
        await runner.run(_ctx(_source(pet_api.url), GET), GET, {})
    keyless = SourceDef(id="source_1", type="openapi", name="pets", base_url=pet_api.url)
    with pytest.raises(AbilityError, match="HTTP 401"):
        await runner.run(_ctx(keyless, GET), GET, {"petId": 1})
    down = _source(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(AbilityError, match="failed"):
        await runner.run(_ctx(down, GET), GET, {"petId": 1})
    guarded = OpenApiRunner(OutboundClient(TargetCache(allow_private=False)))
    with pytest.raises(AbilityError, match="refused"):
        await guarded.run(_ctx(_source(pet_api.url), GET), GET, {"petId": 1})
    await guarded.client.aclose()
    # The source's metrics count them: the 401 as the upstream's error, the rest as no answer.
    assert _calls("error") == errors + 1 and _calls("unreachable") == unreachable + 2
