"""OpenTelemetry tracing across HTTP and NATS hops; off unless ``SKILLRELAY_OTEL_ENABLED`` is true.

What it does when enabled (``configure_tracing``):
- sets a ``TracerProvider`` (resource ``service.name = skillrelay-<service>``) exporting spans with
  OTLP/HTTP, configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables (or an exporter passed in);
- ``tracing_middleware`` opens a server span per routed HTTP request, continuing a W3C ``traceparent``
  sent by the client;
- NATS: nats-py's ``Client.publish`` is wrapped to put the current ``traceparent`` into the message
  headers (requests, events and audit records all go through it), and ``Client.subscribe`` callbacks
  are wrapped to continue that trace in a consumer span named after the subject. Replies to inboxes
  are not traced. The wrapping is process-wide and only installed when tracing is enabled.

When disabled nothing is patched and the middleware passes requests straight through.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from skillrelay_common.settings import Settings

_tracer = trace.get_tracer("skillrelay")
_enabled = False
_nats_originals: tuple[Any, Any] | None = None


def enabled() -> bool:
    return _enabled


def configure_tracing(
    service: str,
    settings: Settings,
    *,
    exporter: SpanExporter | None = None,
    processor: SpanProcessor | None = None,
) -> bool:
    """Turn tracing on for this process if the settings ask for it; returns whether it is on."""
    global _enabled
    if not settings.otel_enabled:
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": f"skillrelay-{service}"}))
    if processor is None:
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        processor = BatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _patch_nats()
    _enabled = True
    return True


# --- HTTP ---------------------------------------------------------------------------------------------


def tracing_middleware(app: ASGIApp) -> ASGIApp:
    """Litestar middleware: one server span per routed HTTP request (no-op while tracing is off)."""

    def middleware(scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: while tracing is off it leaves no frame of its own in the await chain, which
        # a listening stream keeps alive for hours on each of tens of thousands of clients.
        if not _enabled or scope["type"] != ScopeType.HTTP:
            return app(scope, receive, send)
        return traced(scope, receive, send)

    async def traced(scope: Scope, receive: Receive, send: Send) -> None:
        carrier = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        route = str(scope.get("path_template") or scope.get("path", ""))
        method = str(scope.get("method", "GET"))
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with _tracer.start_as_current_span(
            f"{method} {route}",
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route, "url.path": scope["path"]},
        ) as span:
            try:
                await app(scope, receive, send_wrapper)
            finally:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))

    return middleware


# --- NATS ---------------------------------------------------------------------------------------------


def disable_tracing() -> None:
    """Stop tracing and undo the NATS wrapping (tests); the tracer provider stays set."""
    global _enabled, _nats_originals
    _enabled = False
    if _nats_originals is not None:
        NATS.publish, NATS.subscribe = _nats_originals  # type: ignore[method-assign]
        _nats_originals = None


def _patch_nats() -> None:
    global _nats_originals
    if _nats_originals is not None:
        return
    original_publish = NATS.publish
    original_subscribe = NATS.subscribe
    _nats_originals = (original_publish, original_subscribe)

    @functools.wraps(original_publish)
    async def publish(self: NATS, subject: str, payload: bytes = b"", *args: Any, **kwargs: Any) -> None:
        if not subject.startswith("_INBOX.") and trace.get_current_span().get_span_context().is_valid:
            headers = dict(kwargs.get("headers") or {})
            propagate.inject(headers)
            kwargs["headers"] = headers
        await original_publish(self, subject, payload, *args, **kwargs)

    @functools.wraps(original_subscribe)
    async def subscribe(self: NATS, subject: str, *args: Any, **kwargs: Any) -> Any:
        callback = kwargs.get("cb")
        if callback is not None and not subject.startswith("_INBOX."):
            kwargs["cb"] = _traced_callback(subject, callback)
        return await original_subscribe(self, subject, *args, **kwargs)

    NATS.publish = publish  # type: ignore[method-assign]
    NATS.subscribe = subscribe  # type: ignore[method-assign]


def _traced_callback(
    subscription: str, callback: Callable[[Msg], Awaitable[None]]
) -> Callable[[Msg], Awaitable[None]]:
    async def traced(msg: Msg) -> None:
        parent = propagate.extract(dict(msg.headers or {}))
        token = context.attach(parent)
        started = time.perf_counter()
        try:
            with _tracer.start_as_current_span(
                f"process {subscription}",
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "nats",
                    "messaging.destination.name": msg.subject,
                    "messaging.message.body.size": len(msg.data),
                },
            ) as span:
                await callback(msg)
                span.set_attribute("skillrelay.handler_ms", (time.perf_counter() - started) * 1000)
        finally:
            context.detach(token)

    return traced


def span(name: str, **attributes: Any) -> Any:
    """A span around some work of one's own: ``with tracing.span("resolve", integration=id): ...``."""
    return _tracer.start_as_current_span(name, attributes=attributes)
