"""The AsyncAPI document: valid AsyncAPI 3.0, covers every subject, and docs/asyncapi.json is current."""

import json
from pathlib import Path
from typing import Any

import jsonschema

from skillrelay_common import asyncapi, subjects
from skillrelay_common.asyncapi import _event_address

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "vendor" / "asyncapi-3.0.0.schema.json"
COMMITTED = ROOT / "docs" / "asyncapi.json"


def _addresses(document: dict[str, Any]) -> set[str]:
    return {channel["address"] for channel in document["channels"].values() if channel["address"]}


def test_document_is_valid_asyncapi_3() -> None:
    document = asyncapi.build_document()
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_every_endpoint_event_stream_and_subject_constant_is_described() -> None:
    document = asyncapi.build_document()
    addresses = _addresses(document)
    for endpoint in subjects.all_endpoints():
        assert endpoint.subject in addresses, endpoint.subject
        request = endpoint.request.__name__
        assert request in document["components"]["messages"], request
        assert request in document["components"]["schemas"], request
    for event in subjects.all_events():
        assert _event_address(event.subject)[0] in addresses, event.subject
        assert event.payload.__name__ in document["components"]["schemas"]
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
    for operation in document["operations"].values():
        assert operation["channel"]["$ref"].split("/")[-1] in document["channels"]


def test_committed_file_is_up_to_date() -> None:
    assert COMMITTED.exists(), "run `make asyncapi`"
    assert COMMITTED.read_text() == asyncapi.render(), "docs/asyncapi.json is stale: run `make asyncapi`"
