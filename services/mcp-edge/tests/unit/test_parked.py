"""Parked upstream calls on one replica (``abilities.parked``): the upstream's question waits for a
retry, which only the caller it was parked for may answer; a call nobody answers is cancelled
upstream at its deadline. Across replicas, against a real 2025-session upstream, in
tests/e2e/edge/test_mcp_sources.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from skillrelay_common.upstream import UpstreamRpcError
from skillrelay_edge.abilities.parked import GONE, HOLDER_GONE, PARKED_PREFIX, ParkedCall, ParkedCalls

QUESTION = {"message": "Your name?", "requestedSchema": {"type": "object"}}
ANSWER = {"action": "accept", "content": {"name": "Ada"}}


class Upstream:
    """Stands in for the ``UpstreamConnection``: its timeout and the notifications it is sent."""

    timeout = 30.0

    def __init__(self) -> None:
        self.notified: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self.notified.put((method, params))


async def ask_name(parked: ParkedCall) -> dict[str, Any]:
    parked.bind(7)
    answer = await parked.ask("elicitation/create", QUESTION)
    return {"content": [{"type": "text", "text": f"Hello, {answer['content']['name']}!"}]}


def park(
    calls: ParkedCalls, upstream: Upstream, *, lifetime: float = 30.0, **capabilities: Any
) -> ParkedCall:
    return calls.park(
        upstream,  # type: ignore[arg-type]
        ask_name,
        integration_id="mcpserver_1",
        principal="token:1",
        capabilities=capabilities or {"elicitation": {}},
        notify=None,
        lifetime=lifetime,
    )


async def resume(
    calls: ParkedCalls, resume_id: str, responses: dict[str, Any], principal: str = "token:1"
) -> Any:
    return await calls.resume(
        resume_id, integration_id="mcpserver_1", principal=principal, responses=responses, deadline=0.0
    )


async def test_the_upstreams_question_waits_for_the_retry_that_answers_it() -> None:
    calls = ParkedCalls(edge_key="holder")
    parked = park(calls, Upstream())
    step = await calls.first_step(parked)
    assert step.outcome == "input"
    assert step.requests == {"elicit-1": {"method": "elicitation/create", "params": QUESTION}}
    resume_id = calls.resume_id(parked)
    assert resume_id.startswith(PARKED_PREFIX + "holder:")

    # Unanswered (or answered under another key): the same question, same key, again.
    again = await resume(calls, resume_id, {"elicit-9": ANSWER})
    assert again.outcome == "input" and again.requests == step.requests

    done = await resume(calls, resume_id, {"elicit-1": ANSWER})
    assert done.outcome == "result"
    assert done.result == {"content": [{"type": "text", "text": "Hello, Ada!"}]}
    assert calls.waiting == 0
    late = await resume(calls, resume_id, {"elicit-1": ANSWER})
    assert (late.outcome, late.message) == ("gone", GONE)


async def test_another_principal_or_integration_cannot_answer_a_parked_call() -> None:
    calls = ParkedCalls(edge_key="holder")
    parked = park(calls, Upstream())
    await calls.first_step(parked)
    resume_id = calls.resume_id(parked)
    stranger = await resume(calls, resume_id, {"elicit-1": ANSWER}, principal="token:2")
    assert (stranger.outcome, stranger.message) == ("gone", GONE)
    other = await calls.resume(
        resume_id,
        integration_id="mcpserver_2",
        principal="token:1",
        responses={"elicit-1": ANSWER},
        deadline=0.0,
    )
    assert other.outcome == "gone"
    # Untouched: its own caller still answers it.
    assert calls.waiting == 1
    assert (await resume(calls, resume_id, {"elicit-1": ANSWER})).outcome == "result"


async def test_a_call_nobody_answers_is_cancelled_upstream_at_its_deadline() -> None:
    calls = ParkedCalls(edge_key="holder")
    upstream = Upstream()
    parked = park(calls, upstream, lifetime=0.05)
    assert (await calls.first_step(parked)).outcome == "input"
    method, params = await asyncio.wait_for(upstream.notified.get(), 10)
    assert method == "notifications/cancelled" and params["requestId"] == 7
    assert calls.waiting == 0
    assert (await resume(calls, calls.resume_id(parked), {"elicit-1": ANSWER})).outcome == "gone"


async def test_a_question_the_client_cannot_answer_is_refused_to_the_upstream() -> None:
    calls = ParkedCalls(edge_key="holder")
    parked = park(calls, Upstream(), sampling={})
    step = await calls.first_step(parked)
    assert step.outcome == "rpc_error" and "does not support elicitation" in step.message
    assert calls.waiting == 0
    with pytest.raises(UpstreamRpcError):
        await parked.ask("roots/list", {})


async def test_a_call_parked_on_a_replica_out_of_reach_is_a_clear_error() -> None:
    calls = ParkedCalls(edge_key="here")  # no bus: only calls parked here are reachable
    gone = await resume(calls, f"{PARKED_PREFIX}elsewhere:abc", {"elicit-1": ANSWER})
    assert (gone.outcome, gone.message) == ("gone", HOLDER_GONE)


async def test_stopping_ends_the_parked_calls() -> None:
    calls = ParkedCalls(edge_key="holder")
    upstream = Upstream()
    parked = park(calls, upstream)
    await calls.first_step(parked)
    await calls.stop()
    method, params = await asyncio.wait_for(upstream.notified.get(), 10)
    assert method == "notifications/cancelled" and params["requestId"] == 7
    assert calls.waiting == 0 and parked.task is not None and parked.task.cancelled()
