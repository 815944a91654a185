"""A thin typed layer over nats-py: request/reply with msgspec unions, events on JetStream.

Replies are values, never exceptions across the wire: a timeout, a missing responder or a failing
handler all come back as ``Unavailable``. Each endpoint's decoders are built once and reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import msgspec
import nats
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

from skillrelay_common.schemas.base import Message, Pong, Unavailable
from skillrelay_common.subjects import Endpoint, Event, Stream
from skillrelay_worker.correlation import (
    CORRELATION_HEADER,
    correlation_id,
    correlation_scope,
    fresh_correlation_id,
)

ReqT = TypeVar("ReqT", bound=Message)
RepT = TypeVar("RepT")
EvtT = TypeVar("EvtT", bound=Message)

Handler = Callable[[Any], Awaitable[Any]]

_log = structlog.get_logger("skillrelay.messaging")
_NO_RESPONDER_RETRY_PAUSES = (0.02, 0.08)
# Room left in a message for its headers (correlation id, tracing) under the server's max_payload.
REPLY_HEADROOM_BYTES = 4096
_encoder = msgspec.json.Encoder()
_request_decoders: dict[str, msgspec.json.Decoder[Any]] = {}
_reply_decoders: dict[str, msgspec.json.Decoder[Any]] = {}


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def _request_decoder(endpoint: Endpoint[Any, Any]) -> msgspec.json.Decoder[Any]:
    decoder = _request_decoders.get(endpoint.subject)
    if decoder is None:
        decoder = _request_decoders[endpoint.subject] = msgspec.json.Decoder(endpoint.request)
    return decoder


def _reply_decoder(endpoint: Endpoint[Any, Any]) -> msgspec.json.Decoder[Any]:
    decoder = _reply_decoders.get(endpoint.subject)
    if decoder is None:
        decoder = _reply_decoders[endpoint.subject] = msgspec.json.Decoder(endpoint.reply | Unavailable)
    return decoder


class Bus:
    """One NATS connection of one service instance: serves its endpoints, sends requests, publishes."""

    def __init__(self, nc: NATS, service: str, instance_id: str, request_timeout: float = 5.0) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.service = service
        self.instance_id = instance_id
        self.request_timeout = request_timeout
        self._handlers: dict[str, tuple[Endpoint[Any, Any], Handler]] = {}
        self._subscriptions: list[Any] = []

    @classmethod
    async def connect(
        cls,
        url: str,
        service: str,
        *,
        instance_id: str | None = None,
        request_timeout: float = 5.0,
        **options: Any,
    ) -> Bus:
        instance = instance_id or f"{service}-{uuid.uuid4().hex[:8]}"
        options.setdefault("max_reconnect_attempts", -1)
        options.setdefault("reconnect_time_wait", 0.5)
        options.setdefault("connect_timeout", 5)
        options.setdefault("error_cb", _log_nats_error)
        # A comma-separated list names several servers of a cluster: connecting (and reconnecting)
        # works while any one of them is up.
        servers = [part.strip() for part in url.split(",") if part.strip()]
        nc = await nats.connect(servers=servers, name=instance, **options)
        return cls(nc, service, instance, request_timeout)

    # -- serving ---------------------------------------------------------------------------------

    def serve(self, endpoint: Endpoint[ReqT, Any], handler: Callable[[ReqT], Awaitable[Any]]) -> None:
        """Register ``handler`` for ``endpoint``; call ``start`` to subscribe."""
        if endpoint.subject in self._handlers:
            raise ValueError(f"{endpoint.subject} already has a handler")
        self._handlers[endpoint.subject] = (endpoint, handler)

    def serve_ping(self, endpoint: Endpoint[Any, Pong]) -> None:
        async def pong(_: Any) -> Pong:
            return Pong(service=self.service, instance_id=self.instance_id)

        self.serve(endpoint, pong)

    @property
    def served_endpoints(self) -> list[Endpoint[Any, Any]]:
        return [endpoint for endpoint, _ in self._handlers.values()]

    async def start(self) -> None:
        for endpoint, handler in self._handlers.values():
            queue = "" if endpoint.broadcast else endpoint.service
            callback = self._make_callback(endpoint, handler)
            self._subscriptions.append(await self.nc.subscribe(endpoint.subject, queue=queue, cb=callback))
        await self.nc.flush()

    def _make_callback(
        self, endpoint: Endpoint[Any, Any], handler: Handler
    ) -> Callable[[Msg], Awaitable[None]]:
        decoder = _request_decoder(endpoint)

        async def on_message(msg: Msg) -> None:
            cid = (msg.headers or {}).get(CORRELATION_HEADER) or fresh_correlation_id()
            with correlation_scope(cid, subject=endpoint.subject):
                reply: Message
                try:
                    request = decoder.decode(msg.data)
                except msgspec.ValidationError as exc:
                    reply = Unavailable(message=f"bad request: {exc}")
                else:
                    try:
                        reply = await handler(request)
                    except Exception:
                        _log.exception("nats.handler.failed")
                        reply = Unavailable(message="internal error")
                if msg.reply:
                    payload = self._fitting_reply(endpoint, encode(reply))
                    with contextlib.suppress(nats.errors.ConnectionClosedError):
                        await self.nc.publish(msg.reply, payload, headers={CORRELATION_HEADER: cid})

        return on_message

    def _fitting_reply(self, endpoint: Endpoint[Any, Any], payload: bytes) -> bytes:
        """The reply itself, or an ``Unavailable`` naming the problem when it is larger than the server
        carries: a reply that cannot be published would leave the asker waiting until it times out.
        Every reply that holds a list or client data is bounded where it is built; this is the net."""
        limit = self.nc.max_payload - REPLY_HEADROOM_BYTES
        if len(payload) <= limit:
            return payload
        _log.error("nats.reply.too_large", subject=endpoint.subject, size=len(payload), limit=limit)
        return encode(Unavailable(message=f"the reply ({len(payload)} bytes) is larger than NATS carries"))

    # -- requesting ------------------------------------------------------------------------------

    async def request(
        self, endpoint: Endpoint[ReqT, RepT], message: ReqT, *, timeout: float | None = None
    ) -> RepT | Unavailable:
        started = time.perf_counter()
        budget = timeout or self.request_timeout
        try:
            msg = await self.request_bytes(endpoint.subject, encode(message), budget)
        except nats.errors.NoRespondersError:
            return Unavailable(message=f"no {endpoint.service} service is answering")
        except nats.errors.TimeoutError:
            return Unavailable(message=f"{endpoint.service} did not answer in time")
        except nats.errors.MaxPayloadError:
            return Unavailable(
                message=f"the request is larger than NATS carries ({self.nc.max_payload} bytes)"
            )
        except (
            nats.errors.ConnectionClosedError,
            nats.errors.ConnectionReconnectingError,
            nats.errors.ConnectionDrainingError,
            nats.errors.OutboundBufferLimitError,
        ):
            return Unavailable(message="NATS connection is down")
        finally:
            _observe_request(endpoint.subject, time.perf_counter() - started)
        try:
            return cast("RepT | Unavailable", _reply_decoder(endpoint).decode(msg.data))
        except msgspec.DecodeError:
            return Unavailable(message=f"{endpoint.service} sent an unreadable reply")

    async def request_bytes(self, subject: str, payload: bytes, budget: float) -> Msg:
        """A raw request (for subject families that are not ``Endpoint``s, e.g. the workers'); raises
        nats-py's ``NoRespondersError`` / ``TimeoutError``. nats-server sometimes answers "no
        responders" for a subscription made a moment earlier (seen with 2.15.1 right after a replica
        starts), so that answer is asked again twice, briefly, within the budget."""
        started = time.perf_counter()
        headers = {CORRELATION_HEADER: correlation_id()}
        for pause in _NO_RESPONDER_RETRY_PAUSES:
            remaining = budget - (time.perf_counter() - started)
            try:
                return await self.nc.request(subject, payload, timeout=remaining, headers=headers)
            except nats.errors.NoRespondersError:
                if remaining <= pause:
                    raise
                await asyncio.sleep(pause)
        remaining = max(budget - (time.perf_counter() - started), 0.001)
        return await self.nc.request(subject, payload, timeout=remaining, headers=headers)

    async def gather(
        self,
        endpoint: Endpoint[ReqT, RepT],
        message: ReqT,
        *,
        expect: set[str] | None = None,
        timeout: float = 2.0,
        instance_of: Callable[[Any], str | None] = lambda reply: getattr(reply, "instance_id", None),
    ) -> dict[str, RepT]:
        """Scatter-gather for a broadcast endpoint: collect replies until ``expect`` instances answered
        or ``timeout`` passes. Returns the replies by instance id."""
        inbox = self.nc.new_inbox()
        replies: dict[str, RepT] = {}
        done = asyncio.Event()
        decoder = _reply_decoder(endpoint)

        async def on_reply(msg: Msg) -> None:
            try:
                reply = decoder.decode(msg.data)
            except msgspec.DecodeError:
                return
            instance = instance_of(reply)
            if instance:
                replies[instance] = reply
            if expect is not None and expect.issubset(replies):
                done.set()

        sub = await self.nc.subscribe(inbox, cb=on_reply)
        try:
            await self.nc.publish(
                endpoint.subject, encode(message), reply=inbox, headers={CORRELATION_HEADER: correlation_id()}
            )
            await self.nc.flush()
            if expect is not None and not expect:
                return replies
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout)
        finally:
            await sub.unsubscribe()
        return replies

    # -- events ----------------------------------------------------------------------------------

    async def ensure_stream(self, stream: Stream, *, storage: StorageType = StorageType.FILE) -> None:
        config = StreamConfig(
            name=stream.name,
            subjects=list(stream.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=storage,
            max_age=stream.max_age_seconds,
            max_bytes=stream.max_bytes,
            duplicate_window=stream.duplicate_window_seconds,
        )
        try:
            await self.js.add_stream(config)
        except nats.js.errors.BadRequestError:
            # Exists with other limits: bring it in line with the code.
            await self.js.update_stream(config)

    async def publish_event(
        self, event: Event[EvtT], payload: EvtT, *, subject: str | None = None, msg_id: str | None = None
    ) -> None:
        """Publish on JetStream and wait for the stream's acknowledgement. ``subject`` fills wildcards."""
        target = subject or event.subject
        if "*" in target or ">" in target:
            raise ValueError(f"event subject {target!r} still has wildcards")
        headers = {CORRELATION_HEADER: correlation_id()}
        if msg_id:
            headers["Nats-Msg-Id"] = msg_id
        await self.js.publish(target, encode(payload), stream=event.stream, headers=headers)

    async def close(self) -> None:
        """Drain: finish handlers in flight, flush what we publish, then close."""
        if self.nc.is_closed:
            return
        with contextlib.suppress(Exception):
            await self.nc.drain()


async def _log_nats_error(exc: Exception) -> None:
    _log.warning("nats.error", error=str(exc) or type(exc).__name__)


# A hook for metrics (set by the observability layer); default does nothing.
RequestObserver = Callable[[str, float], None]
_request_observers: list[RequestObserver] = []


def observe_requests(observer: RequestObserver) -> None:
    _request_observers.append(observer)


def _observe_request(subject: str, seconds: float) -> None:
    for observer in _request_observers:
        observer(subject, seconds)
