"""The AsyncAPI document and the FastStream subscribers the services really register agree: each
request subscriber's subject is a channel of the document, answered by the queue group the document
names. And why the document is not FastStream's own (docs/reference/nats.md): its generator builds
payload schemas with pydantic, which does not know msgspec Structs."""

from __future__ import annotations

from typing import Any, cast

import pytest
from faststream.specification import AsyncAPI
from pydantic.errors import PydanticSchemaGenerationError

from skillrelay_auth.handlers import register_jwks_handler, register_static_token_handlers
from skillrelay_auth.worker_credential_handlers import register_worker_credential_handlers
from skillrelay_common import asyncapi
from skillrelay_common.broker import Answers, service_broker
from skillrelay_common.subjects import AUTH_PING, EDGE_PING
from skillrelay_registry.handlers import register_handlers as register_registry
from skillrelay_sessions.handlers import register_handlers as register_sessions

# The wiring functions only keep the use cases in closures: nothing is called while registering.
ANY_USE_CASES = cast(Any, None)


def services_answers() -> list[Answers]:
    sessions = Answers("sessions", "sessions-doc")
    register_sessions(sessions, ANY_USE_CASES)
    registry = Answers("registry", "registry-doc")
    register_registry(registry, ANY_USE_CASES)
    auth = Answers("auth", "auth-doc")
    auth.serve_ping(AUTH_PING)
    register_static_token_handlers(auth, ANY_USE_CASES)
    register_jwks_handler(auth, ANY_USE_CASES)
    register_worker_credential_handlers(auth, ANY_USE_CASES)
    edge = Answers("edge", "edge-doc")
    edge.serve_ping(EDGE_PING)
    return [sessions, registry, auth, edge]


def test_every_faststream_request_subscriber_is_a_channel_with_its_queue_group() -> None:
    document = asyncapi.build_document()
    channels = {channel["address"]: channel for channel in document["channels"].values()}
    seen = 0
    for answers in services_answers():
        for subscriber in answers.router.subscribers:
            subject = subscriber.subject.broker_address  # type: ignore[attr-defined]
            assert subject in channels, subject
            assert channels[subject]["x-nats-queue-group"] == subscriber.queue, subject  # type: ignore[attr-defined]
            seen += 1
    assert seen == sum(len(answers.served_endpoints) for answers in services_answers())
    assert seen >= 25


def test_faststream_own_generator_cannot_describe_msgspec_messages() -> None:
    """If this starts failing, FastStream learned msgspec schemas: the hand-written generator
    (``skillrelay_common.asyncapi``) may then give way to FastStream's (AsyncAPI 3.0)."""
    sessions = services_answers()[0]
    broker = service_broker("nats://in-memory.invalid:4222", "doc", routers=(sessions.router,))
    with pytest.raises(PydanticSchemaGenerationError):
        AsyncAPI(broker, title="Skillrelay", schema_version="3.0.0").to_specification()
