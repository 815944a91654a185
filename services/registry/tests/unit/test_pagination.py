"""Cursors, list query parameters and page assembly, with rows faked as plain objects."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from skillrelay_registry.errors import InvalidInput
from skillrelay_registry.pagination import (
    MetaFilter,
    Position,
    assemble_page,
    decode_cursor,
    encode_cursor,
    parse_list_query,
)


@dataclass
class Row:
    id: str
    created_at: datetime


def test_cursor_round_trips_and_is_opaque_url_safe_text() -> None:
    position = Position(datetime(2026, 11, 21, 16, 0, 0, 123456, tzinfo=UTC), "mcpserver_abc")
    cursor = encode_cursor(position)
    assert decode_cursor(cursor) == position
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor and "+" not in cursor


@pytest.mark.parametrize(
    "cursor", ["zzzz", "!!", "eyJ4IjoxfQ", encode_cursor(Position(datetime(2026, 1, 1), "x"))]
)
def test_foreign_or_broken_cursors_are_400s(cursor: str) -> None:
    with pytest.raises(InvalidInput, match="cursor"):
        decode_cursor(cursor)


def test_list_query_parameters() -> None:
    query = parse_list_query(
        [
            ("take", "5"),
            ("order", "asc"),
            ("blueprintId", "blueprint_1"),
            ("meta[env]", "prod"),
            ("meta[a][b]", "1"),
        ]
    )
    assert query.take == 5 and query.order == "asc" and query.blueprint_id == "blueprint_1"
    assert query.meta == (MetaFilter(("env",), "prod"), MetaFilter(("a", "b"), "1"))
    assert parse_list_query([]).take == 20 and parse_list_query([]).order == "desc"


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("take", "0")], "take"),
        ([("take", "101")], "take"),
        ([("take", "ten")], "take"),
        ([("order", "up")], "order"),
        ([("meta", "x")], "meta\\[key\\]"),
        ([("meta[]", "x")], "meta\\[key\\]"),
    ],
)
def test_bad_list_parameters(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_list_query(pairs)


def test_page_assembly_uses_the_extra_row_only_to_know_there_is_more() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [Row(f"r{i}", start + timedelta(seconds=i)) for i in range(6)]
    page = assemble_page(rows, 5)
    assert [r.id for r in page.items] == ["r0", "r1", "r2", "r3", "r4"]
    assert page.cursor is not None and decode_cursor(page.cursor) == Position(rows[4].created_at, "r4")
    last = assemble_page(rows[:5], 5)
    assert len(last.items) == 5 and last.cursor is None
    assert assemble_page([], 5).cursor is None
