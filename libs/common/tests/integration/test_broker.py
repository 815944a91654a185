"""The services' request handlers on FastStream (``skillrelay_common.broker``) keep the reply rules of
the bus: typed replies, failures answered as ``Unavailable``, the correlation id carried back. Each case
runs in memory (``TestNatsBroker``) and on the real nats-server (the ``answers_url`` fixture)."""

from __future__ import annotations

import msgspec
import pytest

from skillrelay_common.broker import Answers
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.base import NotFound, Ping, Pong, Unavailable
from skillrelay_common.schemas.registry import ResolveIntegration
from skillrelay_common.subjects import REGISTRY_INTEGRATION_RESOLVE, REGISTRY_PING
from skillrelay_devstack.answers import serving


def registry_answers(seen: list[str]) -> Answers:
    answers = Answers("registry", "registry-test")
    answers.serve_ping(REGISTRY_PING)

    async def resolve(request: ResolveIntegration) -> NotFound:
        seen.append(request.integration_id)
        if request.integration_id == "boom":
            raise RuntimeError("the database went away")
        if request.integration_id == "huge":
            return NotFound(what="x" * (answers.max_payload + 1))
        return NotFound(what="integration")

    answers.serve(REGISTRY_INTEGRATION_RESOLVE, resolve)
    return answers


async def test_a_request_reaches_its_handler_and_the_typed_reply_comes_back(answers_url: str | None) -> None:
    seen: list[str] = []
    async with serving(registry_answers(seen), answers_url) as asker:
        reply = await asker.ask_with_id(
            REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id="mcpserver_x")
        )
        pong = await asker.ask(REGISTRY_PING, Ping())
    assert reply.value == NotFound(what="integration")
    assert reply.correlation_id == "test-cid"  # the asker's correlation id comes back with the reply
    assert seen == ["mcpserver_x"]
    assert pong == Pong(service="registry", instance_id="registry-test")


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"kind":"Ping"}', b'{"kind":"ResolveIntegration","integration_id":7}', b"[]"],
    ids=["not-json", "other-message", "wrong-type", "not-an-object"],
)
async def test_a_request_that_does_not_decode_is_answered_bad_request(
    answers_url: str | None, body: bytes
) -> None:
    seen: list[str] = []
    async with serving(registry_answers(seen), answers_url) as asker:
        raw, _ = await asker.raw(REGISTRY_INTEGRATION_RESOLVE.subject, body)
    reply = msgspec.json.decode(raw, type=Unavailable)
    assert reply.message.startswith("bad request: ")
    assert seen == []


async def test_a_failing_handler_answers_unavailable_without_its_error(answers_url: str | None) -> None:
    async with serving(registry_answers([]), answers_url) as asker:
        reply = await asker.ask(REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id="boom"))
    assert reply == Unavailable(message="internal error")  # the exception's text stays in the log


async def test_a_reply_too_large_for_nats_answers_unavailable(answers_url: str | None) -> None:
    async with serving(registry_answers([]), answers_url) as asker:
        reply = await asker.ask(REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id="huge"))
    assert isinstance(reply, Unavailable)
    assert "larger than NATS carries" in reply.message


async def test_a_bus_request_gets_the_faststream_answer(nats_url: str, bus: Bus) -> None:
    """The lean side (the edge's ``Bus.request``) and the FastStream side speak the same wire."""
    async with serving(registry_answers([]), nats_url):
        reply = await bus.request(REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id="a"))
        broken = await bus.request(REGISTRY_INTEGRATION_RESOLVE, ResolveIntegration(integration_id="boom"))
    assert reply == NotFound(what="integration")
    assert broken == Unavailable(message="internal error")


def test_one_endpoint_has_one_handler() -> None:
    answers = registry_answers([])
    with pytest.raises(ValueError, match="already has a handler"):
        answers.serve_ping(REGISTRY_PING)
