"""What every controller shares: the service and owner dependencies, list query parameters, and the
two list answers (a page, or every item as JSON lines)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import structlog
from litestar import Request, Response
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter
from litestar.response import Stream

from skillrelay_registry.errors import Unauthorized
from skillrelay_registry.pagination import MAX_TAKE, ListQuery, Page, parse_list_query
from skillrelay_registry.service import RegistryService

JSONL = "application/jsonl"
_JSONL_TYPES = (JSONL, "application/x-ndjson", "application/jsonlines")
_log = structlog.get_logger("skillrelay.registry.api")
_encoder = msgspec.json.Encoder()

T = TypeVar("T")

# Explicitly named dependencies (Litestar 3 drops inferred ones).
Service = NamedDependency[RegistryService]
OwnerId = NamedDependency[str]
Query = NamedDependency[ListQuery]
PageT = TypeVar("PageT", bound=msgspec.Struct)


def provide_service(state: State) -> RegistryService:
    service = state.get("registry")
    if not isinstance(service, RegistryService):
        raise RuntimeError("the registry service is not started")
    return service


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def provide_owner_id(request: Request[Any, Any, Any], service: Service) -> str:
    """The owner behind ``Authorization: Bearer <API key>``; 401 otherwise."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("send Authorization: Bearer <API key>")
    return await service.authenticate(token)


def owner_dependencies() -> dict[str, Provide]:
    return {
        "service": Provide(provide_service, sync_to_thread=False),
        "owner_id": Provide(provide_owner_id),
    }


def provide_list_query(
    request: Request[Any, Any, Any],
    cursor: Annotated[str | None, QueryParameter(description="opaque cursor from the previous page")] = None,
    take: Annotated[int, QueryParameter(ge=1, le=MAX_TAKE, description="page size")] = 20,
    order: Annotated[Literal["asc", "desc"], QueryParameter(description="by createdAt, then id")] = "desc",
    blueprint_id: Annotated[
        str | None, QueryParameter(name="blueprintId", description="only records of this blueprint")
    ] = None,
) -> ListQuery:
    """Documents the list parameters; ``meta[key]=value`` filters come from the raw query string."""
    del cursor, take, order, blueprint_id  # validated above, parsed (with meta filters) below
    return parse_list_query(request.query_params.multi_items())


LIST_DEPENDENCIES = {"list_query": Provide(provide_list_query, sync_to_thread=False)}


def wants_jsonl(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "").lower()
    return any(media in accept for media in _JSONL_TYPES)


async def listing(
    request: Request[Any, Any, Any],
    page: Callable[[], Awaitable[Page[T]]],
    stream: Callable[[], Awaitable[AsyncIterator[T]]],
    page_type: Callable[..., PageT],
) -> Response[PageT]:
    """A page as ``{items, cursor?}``, or with ``Accept: application/jsonl`` every matching item,
    one ``{"type":"item","data":{...}}`` per line, read from the database in batches as it is sent."""
    if wants_jsonl(request):
        items = await stream()
        # The first batch is read before the 200 goes out, so a bad filter is still a 4xx.
        first = await anext(items, _END)
        return Stream(_jsonl(first, items), media_type=JSONL)  # type: ignore[return-value]
    result = await page()
    return Response(page_type(items=result.items, cursor=result.cursor))


_END = object()


async def _jsonl(first: Any, items: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    if first is _END:
        return
    yield _encoder.encode({"type": "item", "data": first}) + b"\n"
    try:
        async for item in items:
            yield _encoder.encode({"type": "item", "data": item}) + b"\n"
    except Exception as exc:
        # The status line has gone out: say so in the stream instead of cutting it silently.
        _log.exception("registry.jsonl.failed", error_type=type(exc).__name__)
        yield _encoder.encode(
            {"type": "error", "data": {"code": "internal_error", "message": "internal error"}}
        )
        yield b"\n"


async def as_awaitable(value: T) -> T:
    return value
