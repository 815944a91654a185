"""OpenAPI documents as tools, and what a source's catalog brings to a skillset (include, exclude,
prefix, clashes), without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from skillrelay_common.schemas.abilities import AbilityDef, McpSourceHandler, OpenApiHandler, StaticHandler
from skillrelay_common.schemas.registry import SkillsetSnapshot
from skillrelay_devstack.pet_api import pet_document
from skillrelay_registry.models import Source
from skillrelay_registry.sources.assembly import exposed_names, with_sources
from skillrelay_registry.sources.openapi import OPERATION_KEY, DocumentInvalid, read_tools, server_url


def _source(**fields: Any) -> Source:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": "source_a",
        "owner_id": "user_a",
        "skillset_id": "skillset_a",
        "type": "mcp",
        "name": "up",
        "url": "https://up.example/mcp",
        "base_url": None,
        "document": None,
        "headers_encrypted": None,
        "header_names": [],
        "include": [],
        "exclude": [],
        "prefix": "",
        "timeout_ms": 5000,
        "catalog": {},
        "meta": {},
        "created_at": now,
        "updated_at": now,
    }
    values.update(fields)
    return Source(**values)


def test_operations_become_tools_with_schemas_and_routing() -> None:
    tools = {tool["name"]: tool for tool in read_tools(pet_document())}
    assert set(tools) == {"listPets", "addPet", "getPet", "removePet"}  # uploadPetsCsv: CSV body
    get_pet = tools["getPet"]
    assert get_pet["inputSchema"] == {
        "type": "object",
        "properties": {"petId": {"type": "integer"}},
        "required": ["petId"],
    }
    assert get_pet[OPERATION_KEY] == {
        "method": "GET",
        "path": "/pets/{petId}",
        "parameters": [{"name": "petId", "location": "path"}],
        "hasBody": False,
        "operationId": "getPet",
    }
    assert get_pet["outputSchema"]["properties"]["name"] == {"type": "string"}
    assert tools["addPet"]["inputSchema"]["properties"]["body"]["properties"]["tag"]["type"] == [
        "string",
        "null",
    ]
    assert "outputSchema" not in tools["removePet"] and tools["removePet"]["annotations"] == {
        "destructiveHint": True
    }


def test_names_without_operation_id_recursive_schemas_and_bad_documents() -> None:
    document = {
        "openapi": "3.0.3",
        "components": {
            "schemas": {
                "Node": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Node"}}}
            }
        },
        "paths": {
            "/a b/{x}": {
                "post": {
                    "parameters": [{"name": "x", "in": "path"}, {"name": "s", "in": "cookie"}],
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}
                    },
                }
            }
        },
    }
    (tool,) = read_tools(document)
    assert tool["name"] == "post__a_b__x"
    assert set(tool["inputSchema"]["properties"]) == {"x", "body"}  # cookies are not sent
    # The schema that refers to itself is unconstrained below its first level.
    assert tool["inputSchema"]["properties"]["body"] == {"type": "object", "properties": {"next": {}}}
    for bad in ([], {"swagger": "2.0"}, {"openapi": "3.1.0"}, {"openapi": "4.0", "paths": {}}):
        with pytest.raises(DocumentInvalid):
            read_tools(bad)
    assert server_url({"servers": [{"url": "/relative"}, {"url": "https://api.example/v1/"}]}) == (
        "https://api.example/v1"
    )


def test_a_catalog_joins_the_snapshot_filtered_prefixed_and_after_the_skillsets_own_items() -> None:
    catalog = {
        "tools": [
            {"name": "search", "inputSchema": {"type": "object"}, "description": "find"},
            {"name": "delete_all", "inputSchema": {"type": "object"}},
            {"name": "mine", "inputSchema": {"type": "object"}},
            {"name": "bad name!", "inputSchema": {"type": "object"}},
        ],
        "resources": [{"uri": "file:///a", "name": "a"}, {"uri": "file:///secret", "name": "s"}],
        "resourceTemplates": [{"uriTemplate": "file:///{path}", "name": "files"}],
        "prompts": [{"name": "greet", "arguments": [{"name": "who", "required": True}]}],
    }
    source = _source(catalog=catalog, exclude=["delete_*", "file:///secret"], prefix="up_")
    tools, resources, prompts = exposed_names(source)
    assert tools == ["up_search", "up_mine"]  # the bad name is left out
    assert resources == ["file:///a", "file:///{path}"] and prompts == ["up_greet"]

    own = AbilityDef(id="ability_1", name="up_mine", handler=StaticHandler(content=[]))
    snapshot = with_sources(
        SkillsetSnapshot(id="skillset_a", name="S", abilities=[own]), [source], lambda _: {"K": "v"}
    )
    assert [a.name for a in snapshot.abilities] == ["up_mine", "up_search"]
    assert snapshot.abilities[0] is own  # the skillset's own ability keeps its name
    search = snapshot.abilities[1]
    assert search.handler == McpSourceHandler(source_id="source_a", name="search")
    assert search.meta == {"source": "source_a"}
    assert [s.headers for s in snapshot.sources] == [{"K": "v"}]
    assert snapshot.prompts[0].arguments[0].required is True

    only = _source(catalog=catalog, include=["search", "greet"])
    assert exposed_names(only) == (["search"], [], ["greet"])


def test_openapi_catalog_tools_get_openapi_handlers() -> None:
    source = _source(
        type="openapi", url=None, base_url="http://api.example", catalog={"tools": read_tools(pet_document())}
    )
    snapshot = with_sources(SkillsetSnapshot(id="s", name="S"), [source], lambda _: {})
    handlers = {a.name: a.handler for a in snapshot.abilities}
    assert isinstance(handlers["listPets"], OpenApiHandler)
    assert handlers["listPets"].method == "GET" and handlers["listPets"].operation_id == "listPets"
    assert snapshot.sources[0].base_url == "http://api.example" and snapshot.sources[0].url is None
