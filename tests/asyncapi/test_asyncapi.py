"""The AsyncAPI document FastStream generates: valid AsyncAPI 3.0, covers every subject, and
docs/asyncapi.json is current."""

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import pytest

from skillrelay import asyncapi
from skillrelay_common import subjects
from skillrelay_common.asyncapi import event_address

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "vendor" / "asyncapi-3.0.0.schema.json"
COMMITTED = ROOT / "docs" / "asyncapi.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi.build_document()


def _addresses(document: dict[str, Any]) -> set[str]:
    return {channel["address"] for channel in document["channels"].values() if channel["address"]}


def _key(ref: dict[str, str]) -> str:
    return unquote(ref["$ref"].rsplit("/", 1)[1])


def _payload_types(document: dict[str, Any], channel: dict[str, Any]) -> list[str]:
    """The schema names a channel's messages carry (one, or the members of a ``oneOf``)."""
    names = []
    for ref in channel["messages"].values():
        payload = document["components"]["messages"][_key(ref)]["payload"]
        names += [_key(option) for option in payload.get("oneOf", [payload])]
    return names


def test_document_is_valid_asyncapi_3(document: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    """FastStream's channels and messages plus the replies added to them point at what exists."""
    text = json.dumps(document)
    refs = {part.split('"', 1)[0] for part in text.split('"$ref": "#/')[1:]}
    assert len(refs) > 100
    for ref in refs:
        node: Any = document
        for part in ref.split("/"):
            node = node[unquote(part).replace("~1", "/").replace("~0", "~")]
        assert node, ref


def test_every_endpoint_event_stream_and_subject_constant_is_described(document: dict[str, Any]) -> None:
    addresses = _addresses(document)
    channels = {channel["address"]: channel for channel in document["channels"].values()}
    for endpoint in subjects.all_endpoints():
        assert endpoint.subject in addresses, endpoint.subject
        assert _payload_types(document, channels[endpoint.subject]) == [endpoint.request.__name__]
    for event in subjects.all_events():
        address = event_address(event.subject)[0]
        assert address in addresses, event.subject
        carried = [
            name
            for channel in document["channels"].values()
            if channel["address"] == address
            for name in _payload_types(document, channel)
        ]
        assert event.payload.__name__ in carried
        assert all(
            channel.get("x-jetstream-stream") == event.stream
            for channel in document["channels"].values()
            if channel["address"] == address
        )
    # Every stream's subjects and every plain subject constant is covered by some channel.
    prefixes = {address.split("{", 1)[0] for address in addresses}
    streams = [value for value in vars(subjects).values() if isinstance(value, subjects.Stream)]
    for stream in streams:
        for pattern in stream.subjects:
            stem = pattern.rstrip(">").rstrip("*")
            assert any(prefix.startswith(stem) for prefix in prefixes), pattern
    constants = [v for k, v in vars(subjects).items() if k.endswith("_SUBJECT") and isinstance(v, str)]
    assert constants
    for subject in constants:
        assert subject in addresses, subject
    assert "audit.{integrationId}.{kind}" in addresses
    for channel in document["channels"].values():
        for name in channel.get("address", "").split("{")[1:] if channel["address"] else []:
            assert name.split("}")[0] in channel["parameters"], channel["address"]


def test_every_request_replies_with_its_union_and_unavailable(document: dict[str, Any]) -> None:
    operations = {
        document["channels"][_key(operation["channel"])]["address"]: operation
        for operation in document["operations"].values()
    }
    for endpoint in subjects.all_endpoints():
        operation = operations[endpoint.subject]
        assert operation["x-answered-by"] == endpoint.service
        reply = document["channels"][_key(operation["reply"]["channel"])]
        members = getattr(endpoint.reply, "__args__", (endpoint.reply,))
        expected = [member.__name__ for member in members] + ["Unavailable"]
        assert _payload_types(document, reply) == expected, endpoint.subject


def test_committed_file_is_up_to_date() -> None:
    assert COMMITTED.exists(), "run `make asyncapi`"
    assert COMMITTED.read_text() == asyncapi.render(), "docs/asyncapi.json is stale: run `make asyncapi`"
