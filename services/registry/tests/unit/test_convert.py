"""Rows to records: each record field is the row's attribute of the same name unless the converter
says otherwise, and a field the row lacks is an error, never a silent default. Rows are plain objects."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from skillrelay_common.schemas.abilities import HttpHandler
from skillrelay_registry import convert, schemas

NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)


def resource_row(**changes: object) -> SimpleNamespace:
    fields: dict[str, object] = {
        "id": "resource_1",
        "owner_id": "user_1",
        "skillset_id": "skillset_1",
        "name": "readme",
        "title": None,
        "description": "The readme",
        "uri": "file:///readme",
        "uri_template": None,
        "mime_type": "text/plain",
        "text_content": "hello",
        "blob": None,
        "handler": None,
        "annotations": None,
        "size": 5,
        "meta": {"team": "docs"},
        "created_at": NOW,
        "updated_at": NOW,
    }
    return SimpleNamespace(**(fields | changes))


def test_a_record_takes_each_field_from_the_row_and_what_the_converter_names() -> None:
    handler = {"type": "http", "url": "https://api.example.com/readme", "method": "GET"}
    record = convert.resource_out(resource_row(handler=handler))
    assert record.text == "hello"  # the row's text_content
    assert isinstance(record.handler, HttpHandler)
    assert (record.id, record.skillset_id, record.uri, record.size, record.meta) == (
        "resource_1",
        "skillset_1",
        "file:///readme",
        5,
        {"team": "docs"},
    )
    definition = convert.resource_def(resource_row())
    assert (definition.text, definition.handler, definition.mime_type) == ("hello", None, "text/plain")


def test_a_field_the_row_lacks_is_an_error_not_a_default() -> None:
    row = resource_row()
    del row.size
    with pytest.raises(AttributeError, match="size"):
        convert.resource_out(row)
    # given explicitly, it need not be on the row
    assert convert.from_row(schemas.Created, SimpleNamespace(), id="x") == schemas.Created(id="x")
