"""The services' NATS entry points on FastStream: a request ``Endpoint`` is answered by a subscriber
of a ``NatsRouter``, messages are msgspec Structs (FastStream's msgspec serializer), and the reply
rules of ``messaging.Bus`` hold unchanged: a request that does not decode, or a handler that raises,
is answered with ``Unavailable`` (never silence, never an exception across the wire); a reply larger
than the server carries becomes an ``Unavailable`` naming the problem; the correlation id travels in
and out in the ``Skillrelay-Correlation-Id`` header.

``Answers`` collects one service's endpoints; ``service_broker`` builds the broker that carries them
(and whose connection the service's ``Bus`` shares for requests and events, so one service instance
holds one NATS connection). Handlers are typed by their ``Endpoint`` (``subjects.py``), so the subscriber
FastStream documents is exactly the contract.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
import structlog
from fast_depends.exceptions import ValidationError as ArgumentsInvalid
from fast_depends.msgspec import MsgSpecSerializer
from faststream import BaseMiddleware
from faststream.message import StreamMessage
from faststream.nats import NatsBroker, NatsResponse, NatsRouter

from skillrelay_common.schemas.base import Message, Pong, Unavailable
from skillrelay_common.subjects import Endpoint
from skillrelay_worker.correlation import CORRELATION_HEADER, correlation_scope, fresh_correlation_id

ReqT = TypeVar("ReqT", bound=Message)

_log = structlog.get_logger("skillrelay.broker")
_encoder = msgspec.json.Encoder()
# Room left in a reply for its headers under the server's max_payload (as ``messaging.Bus``).
REPLY_HEADROOM_BYTES = 4096
# Requests of one endpoint handled at once by one instance.
CONCURRENT_REQUESTS = 32
# Until the broker is connected (and in the in-memory test broker) the server's default limit.
DEFAULT_MAX_PAYLOAD = 1024 * 1024


def service_broker(
    url: str, instance_id: str, *, routers: tuple[NatsRouter, ...] = (), **options: Any
) -> NatsBroker:
    """The FastStream broker of one service instance: msgspec for bodies, structlog for its log lines
    (FastStream's per-message lines at debug level), reconnecting forever like ``Bus.connect``. A
    comma-separated ``url`` names several servers of a cluster."""
    servers = [part.strip() for part in url.split(",") if part.strip()]
    options.setdefault("max_reconnect_attempts", -1)
    options.setdefault("reconnect_time_wait", 0.5)
    options.setdefault("connect_timeout", 5)
    options.setdefault("error_cb", _log_nats_error)
    return NatsBroker(
        servers,
        name=instance_id,
        serializer=MsgSpecSerializer(),
        logger=structlog.get_logger("skillrelay.faststream"),
        log_level=logging.DEBUG,
        routers=routers,
        **options,
    )


async def _log_nats_error(exc: Exception) -> None:
    _log.warning("nats.error", error=str(exc) or type(exc).__name__)


class Answers:
    """The request endpoints one service answers: one FastStream router, a queue group per service
    (none for a broadcast endpoint, which every instance answers)."""

    def __init__(self, service: str, instance_id: str) -> None:
        self.service = service
        self.instance_id = instance_id
        # Read when a reply is sent: the connected server's limit, set by ``ServiceResources``.
        self.max_payload = DEFAULT_MAX_PAYLOAD
        self.router = NatsRouter(middlewares=(self._reply_middleware,))
        self._served: dict[str, Endpoint[Any, Any]] = {}

    def serve(self, endpoint: Endpoint[ReqT, Any], handler: Callable[[ReqT], Awaitable[Any]]) -> None:
        if endpoint.subject in self._served:
            raise ValueError(f"{endpoint.subject} already has a handler")
        self._served[endpoint.subject] = endpoint
        subscriber = self.router.subscriber(
            endpoint.subject,
            queue="" if endpoint.broadcast else endpoint.service,
            decoder=_request_decoder(endpoint),
            # Requests of one subject run side by side, as they do across replicas: a slow one (a
            # database write) does not hold up the next. The use cases are written for concurrency.
            max_workers=CONCURRENT_REQUESTS,
            title=endpoint.subject,
            description=endpoint.description or None,
        )
        subscriber(_typed_entry(endpoint, handler))

    def serve_ping(self, endpoint: Endpoint[Any, Pong]) -> None:
        async def pong(_: Any) -> Pong:
            return Pong(service=self.service, instance_id=self.instance_id)

        self.serve(endpoint, pong)

    @property
    def served_endpoints(self) -> list[Endpoint[Any, Any]]:
        return list(self._served.values())

    def _reply_middleware(self, msg: Any, /, *, context: Any) -> BaseMiddleware:
        return _ReplyMiddleware(msg, context=context, answers=self)


def _typed_entry(endpoint: Endpoint[Any, Any], handler: Callable[[Any], Awaitable[Any]]) -> Any:
    """The handler as FastStream sees it: its request and reply types are the endpoint's, whatever the
    handler's own annotations, so the generated AsyncAPI document shows the contract."""

    async def entry(request: Any) -> Any:
        return await handler(request)

    entry.__name__ = entry.__qualname__ = endpoint.subject.replace(".", "_")
    entry.__annotations__ = {"request": endpoint.request, "return": endpoint.reply}
    return entry


def _request_decoder(endpoint: Endpoint[Any, Any]) -> Callable[[StreamMessage[Any]], Awaitable[Any]]:
    """Decode the body straight into the request Struct (one pass, a reused decoder); FastStream's
    own path would build a dict first and convert it. A coroutine: FastStream runs a plain function
    in a worker thread."""
    decoder = msgspec.json.Decoder(endpoint.request)

    async def decode(message: StreamMessage[Any]) -> Any:
        return decoder.decode(message.body)

    return decode


class _ReplyMiddleware(BaseMiddleware):
    """Around every request handler: correlation scope, failures answered as ``Unavailable``, the
    reply encoded once and checked against the server's limit."""

    def __init__(self, msg: Any, /, *, context: Any, answers: Answers) -> None:
        super().__init__(msg, context=context)
        self._answers = answers

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]) -> Any:
        cid = (msg.headers or {}).get(CORRELATION_HEADER) or fresh_correlation_id()
        subject = getattr(msg.raw_message, "subject", "")
        with correlation_scope(cid, subject=subject):
            reply: Message
            try:
                reply = await call_next(msg)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                reply = Unavailable(message=f"bad request: {exc}")
            except ArgumentsInvalid as exc:
                reply = Unavailable(message=f"bad request: {exc.original_error or exc}")
            except Exception:
                _log.exception("nats.handler.failed")
                reply = Unavailable(message="internal error")
            payload = self._fitting(subject, _encoder.encode(reply))
        return NatsResponse(payload, headers={CORRELATION_HEADER: cid})

    def _fitting(self, subject: str, payload: bytes) -> bytes:
        """A reply that cannot be published would leave the asker waiting until it times out."""
        limit = self._answers.max_payload - REPLY_HEADROOM_BYTES
        if len(payload) <= limit:
            return payload
        _log.error("nats.reply.too_large", subject=subject, size=len(payload), limit=limit)
        return _encoder.encode(
            Unavailable(message=f"the reply ({len(payload)} bytes) is larger than NATS carries")
        )
