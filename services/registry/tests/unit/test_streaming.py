"""The service's paging and JSON-lines streaming loops, with a fake database session and fake rows."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from skillrelay_common.settings import Settings
from skillrelay_registry.pagination import STREAM_BATCH, ListQuery, decode_cursor
from skillrelay_registry.repo import Repository
from skillrelay_registry.service import RegistryService


@dataclass(frozen=True)
class Row:
    id: str
    created_at: datetime


class FakeSession:
    """Stands in for ``AsyncSession``: a context manager whose ``begin()`` is one too."""

    transactions = 0

    async def __aenter__(self) -> "FakeSession":
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    def begin(self) -> "FakeSession":
        FakeSession.transactions += 1
        return self


class FakeTable:
    """Rows in ``(created_at, id)`` order, fetched the way the repository's keyset query does."""

    def __init__(self, count: int) -> None:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        # Pairs share a timestamp so the id breaks ties, as in the real key.
        self.rows = [Row(f"row{i:04d}", start + timedelta(microseconds=i // 2)) for i in range(count)]
        self.fetches: list[int] = []

    async def fetch(self, _: Repository, query: ListQuery, take: int) -> list[Row]:
        self.fetches.append(take)
        ordered = self.rows if query.order == "asc" else self.rows[::-1]
        if query.after is not None:
            after = (query.after.created_at, query.after.id)
            if query.order == "asc":
                ordered = [r for r in ordered if (r.created_at, r.id) > after]
            else:
                ordered = [r for r in ordered if (r.created_at, r.id) < after]
        return ordered[:take]


def _service() -> RegistryService:
    factory = cast(async_sessionmaker[AsyncSession], FakeSession)
    return RegistryService(factory, cast(Any, None), Settings(secret_key="unit-test-key"))


async def test_stream_reads_every_row_in_batches_each_in_its_own_transaction() -> None:
    table = FakeTable(250)
    service = _service()
    FakeSession.transactions = 0
    streamed = [row.id async for row in service._stream(table.fetch, ListQuery(order="desc"), lambda r: r)]
    assert streamed == [row.id for row in table.rows[::-1]]
    assert table.fetches == [STREAM_BATCH] * 3 and FakeSession.transactions == 3


async def test_stream_of_an_exact_multiple_ends_after_an_empty_batch() -> None:
    table = FakeTable(2 * STREAM_BATCH)
    streamed = [r.id async for r in _service()._stream(table.fetch, ListQuery(order="asc"), lambda r: r)]
    assert streamed == [row.id for row in table.rows]
    assert len(table.fetches) == 3


async def test_pages_follow_their_cursors_to_the_end() -> None:
    table = FakeTable(23)
    service = _service()
    query = ListQuery(take=10, order="asc")
    seen: list[str] = []
    while True:
        page = await service._page(table.fetch, query, lambda r: r)
        seen.extend(row.id for row in page.items)
        if page.cursor is None:
            break
        query = query.next_batch(decode_cursor(page.cursor), 10)
    assert seen == [row.id for row in table.rows]
    assert table.fetches == [11, 11, 11]  # one extra row tells whether another page exists
