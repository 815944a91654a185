"""The AsyncAPI document is FastStream's own: every request subscriber the services really register is
a channel answered by the queue group it subscribes with, and the msgspec messages are described by
their msgspec schemas through pydantic (``skillrelay_worker.pydantic_schema``)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from pydantic import TypeAdapter

from skillrelay import asyncapi
from skillrelay_common.asyncapi import SCHEMAS, reply_schema
from skillrelay_common.schemas.audit import AuditRecord
from skillrelay_common.schemas.base import NotFound, Ok, Unavailable
from skillrelay_common.schemas.registry import IntegrationSnapshot
from skillrelay_worker.protocol import WorkerCall

MSGSPEC_REFS = "#/components/schemas/{name}"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi.build_document()


def test_every_faststream_request_subscriber_is_a_channel_with_its_queue_group(
    document: dict[str, Any],
) -> None:
    channels = {channel["address"]: channel for channel in document["channels"].values()}
    seen = 0
    answers = asyncapi.service_answers()
    for each in answers:
        for subscriber in each.router.subscribers:
            subject = subscriber.subject.broker_address  # type: ignore[attr-defined]
            assert subject in channels, subject
            queue = channels[subject]["bindings"]["nats"].get("queue", "")
            assert queue == subscriber.queue, subject  # type: ignore[attr-defined]
            seen += 1
    assert seen == sum(len(each.served_endpoints) for each in answers)
    assert seen >= 25


def test_the_services_other_subscribers_are_channels(document: dict[str, Any]) -> None:
    addresses = {channel["address"] for channel in document["channels"].values()}
    for subscriber in asyncapi.service_consumers().subscribers:
        assert set(subscriber.specification.subjects) <= addresses  # type: ignore[attr-defined]


def _msgspec_schema(message: type[Any]) -> dict[str, Any]:
    _, components = msgspec.json.schema_components([message], ref_template=MSGSPEC_REFS)
    schema: dict[str, Any] = components[message.__name__]
    return schema


def test_a_reply_union_is_one_of_the_msgspec_schemas_of_its_members() -> None:
    payload, schemas = reply_schema([Ok, NotFound, Unavailable])
    assert payload == {
        "oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in ("Ok", "NotFound", "Unavailable")],
        "discriminator": "kind",
    }
    for member in (Ok, NotFound, Unavailable):
        assert schemas[member.__name__] == _msgspec_schema(member)
        assert schemas[member.__name__]["properties"]["kind"] == {"enum": [member.__name__]}


def test_nested_types_become_named_schemas_refered_to_by_pydantic() -> None:
    """A message with nested Structs and a tagged union inside (the ability handlers): every named
    type once under ``$defs``, refs resolving there, the discriminator in AsyncAPI's form."""
    generated = TypeAdapter(IntegrationSnapshot | NotFound).json_schema(ref_template=SCHEMAS)
    definitions = generated["$defs"]
    _, components = msgspec.json.schema_components([IntegrationSnapshot, NotFound], ref_template=MSGSPEC_REFS)
    assert set(definitions) == set(components)
    assert definitions["IntegrationSnapshot"]["properties"] == components["IntegrationSnapshot"]["properties"]
    handler = definitions["AbilityDef"]["properties"]["handler"]
    assert handler["discriminator"] == "type"
    assert {"$ref": "#/components/schemas/WorkerHandler"} in handler["anyOf"]


def test_a_plain_struct_and_a_worker_message_are_described_too(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["AuditRecord"] == _msgspec_schema(AuditRecord)
    assert schemas["WorkerCall"] == _msgspec_schema(WorkerCall)
