"""The messaging layer against a real nats-server with JetStream."""

import asyncio
import uuid

from nats.aio.msg import Msg

from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.auth import InvalidateCredentials, InvalidationAck
from skillrelay_common.schemas.base import NotFound, Unavailable
from skillrelay_common.schemas.registry import IntegrationChanged, ResolveIntegration
from skillrelay_common.subjects import (
    EDGE_CREDENTIALS_INVALIDATE,
    INTEGRATION_CREATED,
    REGISTRY_EVENTS,
    REGISTRY_INTEGRATION_RESOLVE,
)
from skillrelay_devstack.embedded import free_port


async def test_request_reaches_handler_and_typed_reply_comes_back(nats_url: str, bus: Bus) -> None:
    server = await Bus.connect(nats_url, "registry")
    seen: list[str] = []

    async def resolve(request: ResolveIntegration) -> NotFound:
        seen.append(request.integration_id)
        return NotFound(what="integration")

    server.serve(REGISTRY_INTEGRATION_RESOLVE, resolve)
    await server.start()
    try:
        reply = await bus.request(
            REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id="mcpserver_x")
        )
        assert reply == NotFound(what="integration")
        assert seen == ["mcpserver_x"]
    finally:
        await server.close()


async def test_missing_responder_is_a_value_not_an_exception(bus: Bus) -> None:
    reply = await bus.request(
        REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id="x"), timeout=0.5
    )
    assert isinstance(reply, Unavailable)
    assert "registry" in reply.message


async def test_failing_handler_answers_unavailable(nats_url: str, bus: Bus) -> None:
    server = await Bus.connect(nats_url, "registry")

    async def broken(_: ResolveIntegration) -> NotFound:
        raise RuntimeError("boom")

    server.serve(REGISTRY_INTEGRATION_RESOLVE, broken)
    await server.start()
    try:
        reply = await bus.request(REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id="x"))
        assert reply == Unavailable(message="internal error")
    finally:
        await server.close()


async def test_a_reply_too_large_for_nats_answers_unavailable_at_once(nats_url: str, bus: Bus) -> None:
    """Regression: a reply over the server's max_payload could not be published, so the asker waited
    for its whole timeout and saw only "did not answer in time"."""
    server = await Bus.connect(nats_url, "registry")

    async def huge(_: ResolveIntegration) -> NotFound:
        return NotFound(what="x" * (server.nc.max_payload + 1))

    server.serve(REGISTRY_INTEGRATION_RESOLVE, huge)
    await server.start()
    try:
        reply = await bus.request(
            REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id="x"), timeout=30
        )
        assert isinstance(reply, Unavailable)
        assert "larger than NATS carries" in reply.message
    finally:
        await server.close()


async def test_a_request_too_large_for_nats_is_a_value_not_an_exception(bus: Bus) -> None:
    reply = await bus.request(
        REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id="x" * (bus.nc.max_payload + 1))
    )
    assert isinstance(reply, Unavailable)
    assert "larger than NATS carries" in reply.message


async def test_gather_collects_one_ack_per_broadcast_instance(nats_url: str, bus: Bus) -> None:
    replicas = [await Bus.connect(nats_url, "edge", instance_id=f"edge-{i}") for i in range(3)]
    for replica in replicas:

        async def ack(_: InvalidateCredentials, replica: Bus = replica) -> InvalidationAck:
            return InvalidationAck(instance_id=replica.instance_id)

        replica.serve(EDGE_CREDENTIALS_INVALIDATE, ack)
        await replica.start()
    try:
        expected = {"edge-0", "edge-1", "edge-2"}
        replies = await bus.gather(
            EDGE_CREDENTIALS_INVALIDATE,
            InvalidateCredentials(integration_id="i"),
            expect=expected,
            timeout=15,
        )
        assert set(replies) == expected
    finally:
        for replica in replicas:
            await replica.close()


async def test_events_are_stored_on_the_producers_stream(bus: Bus) -> None:
    await bus.ensure_stream(REGISTRY_EVENTS)
    await bus.ensure_stream(REGISTRY_EVENTS)  # idempotent
    integration_id = f"mcpserver_{uuid.uuid4().hex}"
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_event(msg: Msg) -> None:
        await received.put(msg.data)

    sub = await bus.nc.subscribe("events.registry.integration.created", cb=on_event)
    await bus.publish_event(
        INTEGRATION_CREATED,
        IntegrationChanged(integration_id=integration_id, owner_id="user_1", change="created"),
    )
    data = await asyncio.wait_for(received.get(), 5)
    assert integration_id.encode() in data
    info = await bus.js.stream_info(REGISTRY_EVENTS.name)
    assert info.state.messages >= 1
    await sub.unsubscribe()


async def test_a_list_of_servers_connects_through_one_that_answers(nats_url: str) -> None:
    dead = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    connected = await Bus.connect(f"{dead}, {nats_url}", "test", connect_timeout=1)
    try:
        assert connected.nc.is_connected
        assert connected.nc.connected_url is not None
        assert f"{connected.nc.connected_url.hostname}:{connected.nc.connected_url.port}" in nats_url
    finally:
        await connected.close()
