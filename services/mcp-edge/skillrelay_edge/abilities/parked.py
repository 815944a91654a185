"""Parked upstream calls: a 2025-session upstream's question reaches a 2026-07-28 client.

A session-era upstream asks the client something (elicitation, sampling, roots) as a server-to-client
request on the open SSE answer of its call, and waits there for the answer. A 2026-07-28 client is
asked only through ``input_required``: its request ends, and its retry (with ``inputResponses``) may
reach any edge replica. So the replica that sent the call, the *holder*, keeps the upstream's request
running on a task of its own (*parks* it) and answers the client ``input_required`` with the
upstream's question (key ``elicit-1``, ``sample-2``…: stable across retries) and a sealed
``requestState`` whose resume point names the holder and the parked call (``parked:<edgeKey>:<id>``).

The retry, on any replica, hands its answers to the holder (``edge.upstream.<edgeKey>``, NATS request
and reply; locally when it is the holder): the holder gives each answer to the upstream, waits for the
call's next step and replies with it, either the result (or error) or the next question (another
``input_required`` round, same resume point). Failure modes:

- the client never retries: the parked call ends at its deadline (the source's ``timeoutMs`` from the
  first request, at most ``INPUT_WINDOW_SECONDS``): the upstream gets ``notifications/cancelled``;
- a retry after that deadline: the sealed state has expired (Invalid params, "send the request again
  without it"); a retry for a call the holder no longer knows (finished, cancelled, or named for
  another integration or principal): a tool error saying to call again;
- the holder stopped (no responders on its subject) or gave no reply by the call's deadline: a tool
  error saying to call again; a holder that stops cancels its parked calls upstream;
- progress and log messages reach the client during the first request only; those the upstream sends
  in later rounds are dropped (the retry's answer carries the next step, not a stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from skillrelay_common.messaging import Bus, encode
from skillrelay_common.schemas.edge import ParkedAnswer, ParkedStep
from skillrelay_common.subjects import parked_call_subject
from skillrelay_common.upstream import UpstreamConnection, UpstreamError, UpstreamRpcError
from skillrelay_edge.calls.context import INVALID_REQUEST
from skillrelay_edge.modern.inputs import CAPABILITY_OF, input_key

_log = structlog.get_logger("skillrelay.edge.parked")
# Marks a resume point naming a parked call: ``parked:<edgeKey>:<parkId>``.
PARKED_PREFIX = "parked:"
_answer_decoder = msgspec.json.Decoder(ParkedAnswer)
_step_decoder = msgspec.json.Decoder(ParkedStep)
# Beyond the parked call's own deadline: how long a retry waits for the holder's reply.
_REPLY_GRACE_SECONDS = 5.0
GONE = (
    "this call is no longer waiting for an answer (it finished, expired or was cancelled); "
    "call the tool again"
)
HOLDER_GONE = "the edge replica holding this call has stopped; call the tool again"
NO_REPLY = "the edge replica holding this call did not answer in time; call the tool again"

Notify = Callable[[str, dict[str, Any]], Awaitable[None]]
StartRequest = Callable[["ParkedCall"], Awaitable[dict[str, Any]]]


class ParkedCall:
    """One upstream request running apart from the client's request: the upstream's questions wait
    here (by key) for a retry to answer them. It is the request's ``MessageHandler``."""

    def __init__(
        self,
        park_id: str,
        *,
        integration_id: str,
        principal: str,
        capabilities: dict[str, Any],
        deadline: float,
        notify: Notify | None,
    ) -> None:
        self.park_id = park_id
        self.integration_id = integration_id
        self.principal = principal
        self.deadline = deadline  # wall clock (sealed into the requestState)
        self.request_id: int | None = None
        self.lock = asyncio.Lock()  # one retry at a time moves the call on
        self.task: asyncio.Task[dict[str, Any]] | None = None
        self._capabilities = capabilities
        self._notify = notify
        self._questions: dict[str, tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = {}
        self._numbers = itertools.count(1)
        self._changed = asyncio.Event()

    def bind(self, request_id: int) -> None:
        self.request_id = request_id

    def stop_notifications(self) -> None:
        """The client's first request is over: later notifications have nowhere to go."""
        self._notify = None

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        if self._notify is not None:
            await self._notify(method, params)

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        capability = CAPABILITY_OF.get(method)
        if capability is None:
            raise UpstreamRpcError(INVALID_REQUEST, f"{method} is not relayed to the client")
        if capability not in self._capabilities:
            raise UpstreamRpcError(INVALID_REQUEST, f"the client does not support {capability}")
        key = input_key(method, next(self._numbers))
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._questions[key] = ({"method": method, "params": params}, answer)
        self._changed.set()
        try:
            return await answer
        finally:
            self._questions.pop(key, None)

    def deliver(self, responses: dict[str, dict[str, Any]]) -> None:
        """The client's answers, each to the question of its key (unknown keys are ignored)."""
        for key, response in responses.items():
            question = self._questions.pop(key, None)
            if question is not None and not question[1].done():
                question[1].set_result(response)

    def ended(self) -> None:
        self._changed.set()

    async def next_step(self) -> ParkedStep:
        """The result once the upstream answered, else the questions it waits on (at least one)."""
        assert self.task is not None
        while True:
            self._changed.clear()
            if self.task.done():
                return self._outcome(self.task)
            if self._questions:
                return ParkedStep(
                    outcome="input",
                    requests={key: question for key, (question, _) in self._questions.items()},
                )
            await self._changed.wait()

    def _outcome(self, task: asyncio.Task[dict[str, Any]]) -> ParkedStep:
        if task.cancelled():
            return ParkedStep(outcome="gone", message=GONE)
        error = task.exception()
        if error is None:
            return ParkedStep(outcome="result", result=task.result())
        if isinstance(error, UpstreamRpcError):
            return ParkedStep(outcome="rpc_error", code=error.code, message=error.message, data=error.data)
        if isinstance(error, UpstreamError):
            return ParkedStep(outcome="upstream_error", message=error.message)
        _log.error("parked.call.failed", error=type(error).__name__)
        return ParkedStep(outcome="upstream_error", message="the upstream call failed")


class ParkedCalls:
    """This replica's parked calls, and the retries of calls parked on other replicas."""

    def __init__(self, bus: Bus | None = None, edge_key: str | None = None) -> None:
        self._bus = bus
        self.edge_key = edge_key or uuid.uuid4().hex[:12]
        self._calls: dict[str, ParkedCall] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._serving: set[asyncio.Task[None]] = set()
        self._notices: set[asyncio.Future[None]] = set()
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        if self._bus is None:
            return
        self._subscription = await self._bus.nc.subscribe(
            parked_call_subject(self.edge_key), cb=self._on_answer
        )
        await self._bus.nc.flush()

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None
        for parked in list(self._calls.values()):
            self._end(parked)
        await asyncio.gather(*self._serving, *self._notices, return_exceptions=True)

    @property
    def waiting(self) -> int:
        return len(self._calls)

    def resume_id(self, parked: ParkedCall) -> str:
        return f"{PARKED_PREFIX}{self.edge_key}:{parked.park_id}"

    def park(
        self,
        connection: UpstreamConnection,
        start: StartRequest,
        *,
        integration_id: str,
        principal: str,
        capabilities: dict[str, Any],
        notify: Notify | None,
        lifetime: float,
    ) -> ParkedCall:
        """Run ``start(parked)`` (the upstream request) on a task of its own, held here for
        ``lifetime`` seconds at most (then cancelled)."""
        parked = ParkedCall(
            uuid.uuid4().hex,
            integration_id=integration_id,
            principal=principal,
            capabilities=capabilities,
            deadline=time.time() + lifetime,
            notify=notify,
        )
        parked.task = asyncio.create_task(self._run(connection, parked, start))
        self._calls[parked.park_id] = parked
        self._timers[parked.park_id] = asyncio.get_running_loop().call_later(lifetime, self._expire, parked)
        return parked

    async def first_step(self, parked: ParkedCall) -> ParkedStep:
        """The call's first step, for the client's first request (cancelled with it)."""
        try:
            step = await parked.next_step()
        except asyncio.CancelledError:
            self._end(parked)
            raise
        finally:
            parked.stop_notifications()
        if step.outcome != "input":
            self._forget(parked)
        return step

    async def resume(
        self,
        resume_id: str,
        *,
        integration_id: str,
        principal: str,
        responses: dict[str, dict[str, Any]],
        deadline: float,
    ) -> ParkedStep:
        """A retry's answers to the call ``resume_id`` names, wherever it is parked; its next step
        (the holder replies by the call's ``deadline``, wall clock)."""
        holder, _, park_id = resume_id[len(PARKED_PREFIX) :].partition(":")
        answer = ParkedAnswer(
            park_id=park_id, integration_id=integration_id, principal=principal, responses=responses
        )
        if holder == self.edge_key:
            return await self._step(answer)
        if self._bus is None:
            return ParkedStep(outcome="gone", message=HOLDER_GONE)
        subject = parked_call_subject(holder)
        timeout = max(deadline - time.time(), 0.0) + _REPLY_GRACE_SECONDS
        for attempt in range(2):
            try:
                reply = await self._bus.nc.request(subject, encode(answer), timeout=timeout)
            except nats.errors.NoRespondersError:
                if attempt == 0:  # nats-server may briefly say so of a live subscription: ask again
                    await asyncio.sleep(0.05)
                    continue
                return ParkedStep(outcome="gone", message=HOLDER_GONE)
            except nats.errors.Error:  # no reply in time, or this replica's own connection is down
                return ParkedStep(outcome="gone", message=NO_REPLY)
            try:
                return _step_decoder.decode(reply.data)
            except msgspec.DecodeError:
                return ParkedStep(outcome="gone", message=NO_REPLY)
        return ParkedStep(outcome="gone", message=HOLDER_GONE)

    async def _step(self, answer: ParkedAnswer) -> ParkedStep:
        parked = self._calls.get(answer.park_id)
        if parked is None or (parked.integration_id, parked.principal) != (
            answer.integration_id,
            answer.principal,
        ):
            return ParkedStep(outcome="gone", message=GONE)
        async with parked.lock:
            if parked.park_id not in self._calls:  # ended while this retry waited for the lock
                return ParkedStep(outcome="gone", message=GONE)
            parked.deliver(answer.responses)
            step = await parked.next_step()
        if step.outcome != "input":
            self._forget(parked)
        return step

    async def _on_answer(self, msg: Msg) -> None:
        # Each on a task of its own: a retry waits for the upstream's next step, others go on meanwhile.
        task = asyncio.create_task(self._serve(msg))
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _serve(self, msg: Msg) -> None:
        try:
            answer = _answer_decoder.decode(msg.data)
        except msgspec.DecodeError:
            return
        step = await self._step(answer)
        if msg.reply:
            with contextlib.suppress(nats.errors.Error):
                await msg.respond(encode(step))

    async def _run(
        self, connection: UpstreamConnection, parked: ParkedCall, start: StartRequest
    ) -> dict[str, Any]:
        try:
            return await start(parked)
        except (asyncio.CancelledError, UpstreamError) as exc:
            if not isinstance(exc, UpstreamRpcError) and parked.request_id is not None:
                # The edge gave up on it (deadline, the client cancelled, shutdown, timeout): the
                # session-era upstream stops its handler.
                params = {"requestId": parked.request_id, "reason": "ended by the edge"}
                notice = asyncio.ensure_future(connection.notify("notifications/cancelled", params))
                self._notices.add(notice)
                notice.add_done_callback(self._notices.discard)
            raise
        finally:
            parked.ended()

    def _expire(self, parked: ParkedCall) -> None:
        if parked.task is not None and not parked.task.done():
            _log.info("parked.call.expired", park_id=parked.park_id)
        self._end(parked)

    def _end(self, parked: ParkedCall) -> None:
        """Stop the upstream request (if it still runs) and forget the call."""
        if parked.task is not None and not parked.task.done():
            parked.task.cancel()
        self._forget(parked)

    def _forget(self, parked: ParkedCall) -> None:
        self._calls.pop(parked.park_id, None)
        timer = self._timers.pop(parked.park_id, None)
        if timer is not None:
            timer.cancel()
        task = parked.task
        if task is not None:
            task.add_done_callback(_consume)


def _consume(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: nobody else reads an abandoned call's outcome
