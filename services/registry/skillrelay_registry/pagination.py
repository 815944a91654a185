"""Keyset pagination over ``(created_at, id)``: opaque cursors, query parameters, page assembly.

A cursor names the last item a client has seen; the next page starts strictly after it, so rows
inserted while a client pages never shift, duplicate or hide the rows it has not reached yet.
Pure functions only: the repository turns a ``ListQuery`` into SQL.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Literal, Protocol, TypeVar, cast

import msgspec

from skillrelay_common.schemas.sessions import SessionPosition
from skillrelay_registry.errors import InvalidInput

Order = Literal["asc", "desc"]
DEFAULT_TAKE = 20
MAX_TAKE = 100
# Streaming reads this many rows per query (each in its own short transaction).
STREAM_BATCH = 100

_META_KEY = re.compile(r"^meta((?:\[[^\[\]]+\])+)$")
_META_PART = re.compile(r"\[([^\[\]]+)\]")

T = TypeVar("T")


class _CursorBody(msgspec.Struct, array_like=True):
    created_at: datetime
    id: str


_cursor_decoder = msgspec.json.Decoder(_CursorBody)


@dataclass(frozen=True)
class Position:
    """Where a page ends: the sort key of its last item."""

    created_at: datetime
    id: str


def encode_cursor(position: Position) -> str:
    raw = msgspec.json.encode(_CursorBody(position.created_at, position.id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = _cursor_decoder.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidInput("cursor is not a cursor this API returned") from None
    if body.created_at.tzinfo is None:
        raise InvalidInput("cursor is not a cursor this API returned")
    return Position(body.created_at, body.id)


@dataclass(frozen=True)
class MetaFilter:
    """``meta[a][b]=v``: the value at path ``("a", "b")`` of ``meta``, compared as text."""

    path: tuple[str, ...]
    value: str


@dataclass(frozen=True)
class ListQuery:
    take: int = DEFAULT_TAKE
    order: Order = "desc"
    after: Position | None = None
    blueprint_id: str | None = None
    meta: tuple[MetaFilter, ...] = field(default_factory=tuple)

    def next_batch(self, after: Position, take: int) -> ListQuery:
        return ListQuery(take, self.order, after, self.blueprint_id, self.meta)


def parse_list_query(params: Iterable[tuple[str, str]]) -> ListQuery:
    """Read ``cursor``, ``take``, ``order``, ``blueprintId`` and ``meta[key]=value`` from query pairs.

    Other parameters are ignored. Bad values raise ``InvalidInput`` naming the parameter."""
    take = DEFAULT_TAKE
    order: Order = "desc"
    after: Position | None = None
    blueprint_id: str | None = None
    meta: list[MetaFilter] = []
    for key, value in params:
        if key == "take":
            if not value.isdigit() or not 1 <= int(value) <= MAX_TAKE:
                raise InvalidInput(f"take must be an integer from 1 to {MAX_TAKE}")
            take = int(value)
        elif key == "order":
            if value == "asc":
                order = "asc"
            elif value == "desc":
                order = "desc"
            else:
                raise InvalidInput("order must be 'asc' or 'desc'")
        elif key == "cursor":
            if value:
                after = decode_cursor(value)
        elif key == "blueprintId":
            blueprint_id = value
        elif key.startswith("meta"):
            match = _META_KEY.match(key)
            if match is None:
                raise InvalidInput(f"bad filter {key!r}: use meta[key]=value (or meta[a][b]=value)")
            meta.append(MetaFilter(tuple(_META_PART.findall(match.group(1))), value))
    return ListQuery(take, order, after, blueprint_id, tuple(meta))


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    cursor: str | None


class Keyed(Protocol):
    @property
    def created_at(self) -> datetime: ...
    @property
    def id(self) -> str: ...


def position_of(row: object) -> Position:
    """The sort key of a row (any object with ``created_at`` and ``id``)."""
    keyed = cast(Keyed, row)
    return Position(keyed.created_at, keyed.id)


def assemble_page(rows: Sequence[T], take: int) -> Page[T]:
    """``rows`` were fetched with ``LIMIT take + 1``: the extra row only says another page exists."""
    items = list(rows[:take])
    if len(rows) <= take or not items:
        return Page(items, None)
    return Page(items, encode_cursor(position_of(items[-1])))


# --- sessions: the sessions service sorts by (created_at as epoch seconds, id) --------------------


class _SessionCursorBody(msgspec.Struct, array_like=True):
    created_at: float
    session_id: str


_session_cursor_decoder = msgspec.json.Decoder(_SessionCursorBody)


@dataclass(frozen=True)
class SessionQuery:
    take: int = DEFAULT_TAKE
    order: Order = "desc"
    after: SessionPosition | None = None


def encode_session_cursor(position: SessionPosition) -> str:
    # Epoch seconds as JSON floats round-trip exactly, so the next page starts exactly after this one.
    raw = msgspec.json.encode(_SessionCursorBody(position.created_at, position.session_id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_session_cursor(cursor: str) -> SessionPosition:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = _session_cursor_decoder.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidInput("cursor is not a cursor this API returned") from None
    return SessionPosition(created_at=body.created_at, session_id=body.session_id)


def parse_session_query(params: Iterable[tuple[str, str]]) -> SessionQuery:
    """``cursor``, ``take`` and ``order`` of a session list, checked as for every other list."""
    pairs = list(params)
    general = parse_list_query((key, value) for key, value in pairs if key in {"take", "order"})
    cursors = [value for key, value in pairs if key == "cursor" and value]
    after = decode_session_cursor(cursors[-1]) if cursors else None
    return SessionQuery(general.take, general.order, after)
