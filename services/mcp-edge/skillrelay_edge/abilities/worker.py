"""The ``worker`` handler kind: run the call in a worker process over NATS and relay what it sends.

One wildcard subscription per edge replica (``workerev.<edgeKey>.*.*``: owner and call) receives every
running call's events, so a call costs one publish each way and no subscription churn. Calls and their
events travel on the runner's own lean connection (``skillrelay_worker.nats_lane``: no task switch per
message); only adoption's request/reply uses the service's nats-py connection. See
``skillrelay_worker.protocol`` for the protocol.

A call re-run by a replica adopting it (``CallContext.adopt``) sends ``WorkerAdopt`` instead of a new
``WorkerCall`` and follows the same call on this replica's events subject. Events carry ``seq``; one
already seen is dropped, so the worker's replay may overlap what was relayed before.

Stateless era (``CallContext.inputs``): a question the handler asks is answered from the request's
``inputResponses`` when they hold its key; otherwise the request ends with ``InputRequired`` while the
handler stays suspended in the worker, waiting for its answer. The client's retry (any replica)
adopts the call from just before the first unanswered question: the worker republishes the questions
(same reply subjects), and the retry's answers go to them. See ``docs/mcp-2026.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import nats.errors
import structlog

from skillrelay_common.messaging import Bus, encode
from skillrelay_common.schemas.abilities import WorkerHandler
from skillrelay_edge.calls.context import (
    CALL_LOST_MESSAGE,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    REQUEST_TIMEOUT,
    AbilityError,
    AdoptCall,
    CallContext,
    ClientRequestError,
)
from skillrelay_edge.modern.inputs import CAPABILITY_OF, InputRequired, ResumePoint, input_key
from skillrelay_edge.modern.meta import MISSING_REQUIRED_CLIENT_CAPABILITY
from skillrelay_edge.tasks.service import DRIVER_REFRESH_SECONDS, TaskCreated, TaskHost
from skillrelay_edge.transport.jsonrpc import RpcError
from skillrelay_worker.correlation import CORRELATION_HEADER, correlation_id
from skillrelay_worker.nats_lane import NO_RESPONDERS, LaneMessage, NatsLane
from skillrelay_worker.protocol import (
    WorkerAdopt,
    WorkerCall,
    WorkerCancel,
    WorkerClientAnswer,
    WorkerClientRequest,
    WorkerError,
    WorkerEvent,
    WorkerHeartbeat,
    WorkerKind,
    WorkerLog,
    WorkerProgress,
    WorkerResult,
    WorkerTaskStart,
)
from skillrelay_worker.subjects import (
    parse_events_subject,
    worker_adopt_subject,
    worker_call_subject,
    worker_cancel_subject,
    worker_events_subject,
    worker_events_wildcard,
)

_log = structlog.get_logger("skillrelay.edge.worker")
_event_decoder = msgspec.json.Decoder(WorkerEvent | WorkerClientRequest)

_KINDS: dict[str, WorkerKind] = {
    "tools/call": "tool",
    "resources/read": "resource",
    "prompts/get": "prompt",
    "completion/complete": "completion",
}
# Which client capability each server-to-client request needs.
_CAPABILITY_OF = {
    "sampling/createMessage": "sampling",
    "elicitation/create": "elicitation",
    "roots/list": "roots",
}
_CANCELLED = object()
# After a question nobody answered yet, how long to wait for more (``asyncio.gather`` of several
# questions): they then go out in one ``input_required`` result instead of one round each.
INPUT_COLLECT_SECONDS = 0.05
# A retry whose suspended call no worker holds any more (it stopped, or the call timed out).
INPUT_LOST_MESSAGE = (
    "the call waiting for this input is gone (its worker stopped or it timed out); "
    "send the request again without requestState"
)

# Room left in a NATS message for its headers (correlation id, tracing) under the server's maximum.
MESSAGE_HEADROOM_BYTES = 4096


class _CallInbox:
    """One call's events as they arrive (and the cancel marker), read by one task. Lighter than an
    ``asyncio.Queue`` with ``asyncio.timeout`` around each get: this runs once per worker call."""

    __slots__ = ("_items", "_loop", "_waiter", "owner_id")

    def __init__(self, loop: asyncio.AbstractEventLoop, owner_id: str) -> None:
        self._loop = loop
        # Only events on this owner's events subject belong to the call (any of the owner's workers
        # may publish there, no other owner's may).
        self.owner_id = owner_id
        self._items: deque[LaneMessage | object] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: LaneMessage | object) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self, timeout: float) -> LaneMessage | object:
        """The next item; ``TimeoutError`` when none came within ``timeout`` seconds."""
        if not self._items:
            waiter = self._waiter = self._loop.create_future()
            expiry = self._loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            finally:
                expiry.cancel()
                self._waiter = None
        return self._items.popleft()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


@dataclass
class _CallState:
    # True once the worker will send nothing more (answered, failed, or was never there).
    worker_done: bool = False
    no_responder_retries: int = 0
    # The highest event seq relayed; an event at or below it is a duplicate (an adoption's replay).
    last_seq: int = 0
    # Stateless era: the call waits in its worker for a retry (never cancel it).
    suspended: bool = False
    # Stateless era: when the whole call must be over (wall clock; travels in requestState).
    wall_deadline: float = 0.0
    # Tasks extension: the call went on as a task; its driver follows it now (see ``_drive_task``).
    handed_off: bool = False


_NO_RESPONDER_BACKOFF = (0.02, 0.05, 0.1)


class WorkerRunner:
    """``AbilityRunner`` for ``{"type": "worker", "subject": …}`` handlers."""

    def __init__(
        self,
        bus: Bus,
        *,
        nats_url: str,
        edge_key: str | None = None,
        heartbeat_ms: int = 1_000,
        silence_slack: float = 2.0,
        adopt_timeout: float = 2.0,
    ) -> None:
        self._bus = bus
        self._nats_url = nats_url
        self._lane: NatsLane | None = None
        # How long to wait for the worker holding a call to acknowledge a WorkerAdopt.
        self.adopt_timeout = adopt_timeout
        self.silence_slack = silence_slack
        self.edge_key = edge_key or uuid.uuid4().hex[:12]
        self.heartbeat_ms = heartbeat_ms
        self._calls: dict[str, _CallInbox] = {}
        # Call ids: a random prefix and a counter (unique like a uuid4, without a system call each).
        self._call_prefix = uuid.uuid4().hex[:16]
        self._call_counter = itertools.count()
        self._stopping = False
        # Calls followed for their tasks (see ``_drive_task``), kept so they are not collected.
        self._drivers: set[asyncio.Task[None]] = set()

    @property
    def lane(self) -> NatsLane:
        if self._lane is None:
            raise nats.errors.ConnectionClosedError
        return self._lane

    async def start(self) -> None:
        self._lane = await NatsLane.connect(self._nats_url, f"edge-{self.edge_key}-worker-lane")
        self._lane.subscribe(worker_events_wildcard(self.edge_key), self._on_event)
        await self._lane.flush()

    async def stop(self) -> None:
        self._stopping = True
        for driver in list(self._drivers):
            driver.cancel()  # its tasks are reported failed by any replica once its refreshes stop
        if self._lane is not None:
            await self._lane.close()
            self._lane = None

    def _on_event(self, msg: LaneMessage) -> None:
        parsed = parse_events_subject(msg.subject)
        if parsed is None:
            return
        owner_id, call_id = parsed
        inbox = self._calls.get(call_id)
        if inbox is not None and inbox.owner_id == owner_id:
            inbox.put(msg)

    async def run(
        self, ctx: CallContext, handler: WorkerHandler, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        inputs = ctx.inputs
        if inputs is not None and inputs.resume is not None:
            resume: ResumePoint = inputs.resume
            state = _CallState(last_seq=resume.after_seq, wall_deadline=resume.deadline)
            adopt = AdoptCall(resume.call_id, resume.after_seq)
            start = functools.partial(self._adopt, ctx.integration.owner_id, adopt, state, INPUT_LOST_MESSAGE)
            return await self._run(ctx, handler, adopt.call_id, state, start)
        if ctx.adopt is not None:
            adopt = ctx.adopt
            state = _CallState(last_seq=adopt.after_seq)
            start = functools.partial(self._adopt, ctx.integration.owner_id, adopt, state)
            return await self._run(ctx, handler, adopt.call_id, state, start)
        call = self._build_call(ctx, handler, arguments)
        owner_id = ctx.integration.owner_id
        send_call = functools.partial(self._send_call, owner_id, handler.subject, call)
        state = _CallState(wall_deadline=time.time() + handler.timeout_ms / 1000)
        return await self._run(ctx, handler, call.call_id, state, send_call)

    async def _send_call(self, owner_id: str, subject: str, call: WorkerCall) -> None:
        """On the subject under the ability's owner: another owner's workers never see the call."""
        payload = encode(call)
        limit = self.lane.max_payload - MESSAGE_HEADROOM_BYTES
        if len(payload) > limit:
            # NATS would refuse it: say what is wrong instead of "NATS is unavailable".
            raise AbilityError(
                f"the call is {len(payload)} bytes with its arguments; at most {limit} reach a worker",
                INVALID_PARAMS,
            )
        self.lane.publish(
            worker_call_subject(owner_id, subject),
            payload,
            reply=worker_events_subject(self.edge_key, owner_id, call.call_id),
            headers={CORRELATION_HEADER: correlation_id()},
        )

    async def _run(
        self,
        ctx: CallContext,
        handler: WorkerHandler,
        call_id: str,
        state: _CallState,
        start: Callable[[], Awaitable[None]],
    ) -> dict[str, Any]:
        ctx.worker_call_id = call_id
        owner_id = ctx.integration.owner_id
        inbox = _CallInbox(asyncio.get_running_loop(), owner_id)
        self._calls[call_id] = inbox
        ctx.on_cancel(functools.partial(inbox.put, _CANCELLED))
        client_requests: set[asyncio.Task[None]] = set()
        leaving = False
        try:
            await start()
            return await self._follow(ctx, handler, inbox, client_requests, state, start)
        except nats.errors.Error as exc:
            state.worker_done = True
            raise AbilityError(f"cannot reach worker {handler.subject!r}: NATS is unavailable") from exc
        except asyncio.CancelledError:
            # Only a stopping edge cancels the task running a call (a client's cancellation arrives
            # through ``ctx``): the call lives on in the worker for another replica to adopt.
            leaving = True
            raise
        finally:
            for task in client_requests:
                task.cancel()
            # A call that went on as a task is followed by its driver now (it keeps the inbox).
            if not state.handed_off:
                self._calls.pop(call_id, None)
            if (
                not state.worker_done
                and not state.suspended
                and not state.handed_off
                and not leaving
                and not self._stopping
            ):
                # Timed out, cancelled by the client, or the edge gave up: the worker stops its handler.
                # Not when the edge stops: the call lives on for another replica to adopt.
                self._cancel(owner_id, call_id, "cancelled by the edge")

    async def _adopt(
        self, owner_id: str, adopt: AdoptCall, state: _CallState, lost_message: str = CALL_LOST_MESSAGE
    ) -> None:
        """Ask the worker holding the call to send its events here; none answers: the call is lost."""
        request = WorkerAdopt(
            call_id=adopt.call_id,
            events_subject=worker_events_subject(self.edge_key, owner_id, adopt.call_id),
            after_seq=adopt.after_seq,
        )
        try:
            await self._bus.request_bytes(worker_adopt_subject(owner_id), encode(request), self.adopt_timeout)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            state.worker_done = True  # no worker holds it: nothing to cancel
            raise AbilityError(lost_message, INTERNAL_ERROR) from None

    def _build_call(self, ctx: CallContext, handler: WorkerHandler, arguments: dict[str, Any]) -> WorkerCall:
        kind = _KINDS[ctx.method]
        name = ctx.name
        uri: str | None = None
        completion_argument: dict[str, Any] | None = None
        completion_context: dict[str, Any] | None = None
        call_arguments = arguments
        if kind == "resource":
            uri = str(arguments.get("uri", ctx.name))
            target = ctx.target
            name = getattr(target, "uri_template", None) or getattr(target, "uri", None) or uri
            call_arguments = {key: value for key, value in arguments.items() if key != "uri"}
        elif kind == "completion":
            ref = arguments.get("ref") or {}
            name = str(ref.get("name") or ref.get("uri") or ctx.name)
            completion_argument = arguments.get("argument") or {}
            completion_context = (arguments.get("context") or {}).get("arguments") or {}
            call_arguments = {}
        return WorkerCall(
            call_id=f"{self._call_prefix}{next(self._call_counter):x}",
            ability_kind=kind,
            name=name,
            arguments=call_arguments,
            uri=uri,
            completion_argument=completion_argument,
            completion_context=completion_context,
            integration_id=ctx.integration.id,
            session_id=ctx.session_id,
            request_id=ctx.request_id,
            progress_token=ctx.progress_token,
            log_level=ctx.log_level,
            client_capabilities=ctx.client_capabilities,
            meta=ctx.meta,
            timeout_ms=handler.timeout_ms,
            heartbeat_ms=self.heartbeat_ms,
            tasks=ctx.tasks is not None,
        )

    async def _follow(
        self,
        ctx: CallContext,
        handler: WorkerHandler,
        inbox: _CallInbox,
        client_requests: set[asyncio.Task[None]],
        state: _CallState,
        send_call: Callable[[], Awaitable[None]],
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        timeout = handler.timeout_ms / 1000
        deadline = loop.time() + timeout
        if state.wall_deadline:
            # A resumed call keeps its first request's deadline (the worker's timeout counts from it).
            deadline = loop.time() + min(timeout, state.wall_deadline - time.time())
        # Stateless era: questions no answer was sent for, by key (what the client is asked next).
        pending: dict[str, WorkerClientRequest] = {}
        # A worker sends something at least every heartbeat; three missed ones (plus slack for a busy
        # machine) mean it died or hangs.
        silence_limit = 3 * self.heartbeat_ms / 1000 + self.silence_slack
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AbilityError(
                    f"worker {handler.subject!r} did not finish within {timeout:g}s", REQUEST_TIMEOUT
                )
            try:
                item = await inbox.get(min(remaining, INPUT_COLLECT_SECONDS if pending else silence_limit))
            except TimeoutError:
                if pending:
                    state.suspended = True
                    raise self._input_required(handler, ctx, pending, state) from None
                if loop.time() >= deadline:
                    continue
                raise AbilityError(
                    f"worker {handler.subject!r} stopped responding (crashed or hung)", INTERNAL_ERROR
                ) from None
            if item is _CANCELLED:
                raise AbilityError("the request was cancelled", REQUEST_TIMEOUT)
            assert isinstance(item, LaneMessage)
            if item.status == NO_RESPONDERS:
                # nats-server may answer "no responders" for a subscription made a moment ago (seen
                # with 2.15): a worker just started. Nothing was delivered, so sending again is safe.
                if state.no_responder_retries < len(_NO_RESPONDER_BACKOFF):
                    await asyncio.sleep(_NO_RESPONDER_BACKOFF[state.no_responder_retries])
                    state.no_responder_retries += 1
                    await send_call()
                    continue
                state.worker_done = True
                raise AbilityError(
                    f"no worker is serving {handler.subject!r} (none is running)", INTERNAL_ERROR
                )
            try:
                event = _event_decoder.decode(item.data)
            except msgspec.DecodeError:
                _log.warning("worker.event.unreadable", subject=handler.subject)
                continue
            if not isinstance(event, WorkerHeartbeat) and event.seq:
                if event.seq <= state.last_seq:
                    continue  # already relayed (an adoption replays from what was stored)
                state.last_seq = ctx.worker_seq = event.seq
            match event:
                case WorkerResult(result=result):
                    state.worker_done = True
                    return result
                case WorkerError(code=code, message=message):
                    state.worker_done = True
                    raise AbilityError(message, code)
                case WorkerProgress(progress=progress, total=total, message=message):
                    await ctx.progress(progress, total, message)
                case WorkerLog(level=level, data=data, logger=logger):
                    await ctx.log(level, data, logger)
                case WorkerHeartbeat():
                    pass
                case WorkerTaskStart(status_message=status_message):
                    host: TaskHost | None = ctx.tasks
                    if host is None:
                        continue  # this request cannot be answered with a task: the call goes on here
                    record = await host.create(ctx.worker_call_id or "", status_message)
                    state.handed_off = True
                    driver = asyncio.create_task(
                        self._drive_task(
                            host,
                            record.task_id,
                            record.call_id,
                            inbox,
                            handler,
                            state,
                            ctx.client_capabilities,
                        )
                    )
                    self._drivers.add(driver)
                    driver.add_done_callback(self._drivers.discard)
                    raise TaskCreated(record)
                case WorkerClientRequest():
                    if item.reply and ctx.inputs is not None:
                        self._take_input(ctx, event, item.reply, pending)
                    elif item.reply:
                        task = asyncio.create_task(self._ask_client(ctx, event, item.reply))
                        client_requests.add(task)
                        task.add_done_callback(client_requests.discard)

    async def _drive_task(
        self,
        host: TaskHost,
        task_id: str,
        call_id: str,
        inbox: _CallInbox,
        handler: WorkerHandler,
        state: _CallState,
        client_capabilities: dict[str, Any],
    ) -> None:
        """Follow a call that went on as a task and write what it does into the task: questions (as
        ``input_required``, answered by ``tasks/update`` on any replica straight to the worker), the
        progress message (as ``statusMessage``), the result or the error. Log messages and progress
        numbers have no place in a task (the extension says so) and are dropped."""
        loop = asyncio.get_running_loop()
        silence_limit = 3 * self.heartbeat_ms / 1000 + self.silence_slack
        heard = refreshed = loop.time()
        pending: dict[str, tuple[dict[str, Any], str]] = {}
        try:
            while True:
                if state.wall_deadline and time.time() > state.wall_deadline:
                    await host.fail(
                        task_id,
                        REQUEST_TIMEOUT,
                        f"the task did not finish within {handler.timeout_ms / 1000:g}s",
                    )
                    self._cancel(host.owner_id, call_id, "the task timed out")
                    return
                try:
                    item = await inbox.get(INPUT_COLLECT_SECONDS if pending else 1.0)
                except TimeoutError:
                    if pending:
                        if not await host.ask(task_id, pending):
                            return  # cancelled meanwhile
                        pending = {}
                        refreshed = loop.time()
                    elif loop.time() - heard > silence_limit:
                        await host.fail(
                            task_id,
                            INTERNAL_ERROR,
                            f"worker {handler.subject!r} stopped responding (crashed or hung)",
                        )
                        return
                    continue
                if not isinstance(item, LaneMessage):
                    continue  # the original request was cancelled or closed: the task goes on
                if item.status == NO_RESPONDERS:
                    continue
                try:
                    event = _event_decoder.decode(item.data)
                except msgspec.DecodeError:
                    continue
                heard = loop.time()
                if not isinstance(event, WorkerHeartbeat) and event.seq:
                    if event.seq <= state.last_seq:
                        continue
                    state.last_seq = event.seq
                match event:
                    case WorkerResult(result=result):
                        await host.complete(task_id, result)
                        return
                    case WorkerError(code=code, message=message):
                        await host.fail(task_id, code, message)
                        return
                    case WorkerProgress(message=message) if message:
                        if not await host.progress(task_id, message):
                            return
                    case WorkerClientRequest() if item.reply:
                        capability = CAPABILITY_OF.get(event.method)
                        if capability is not None and capability not in client_capabilities:
                            self.answer_error(
                                item.reply,
                                event.call_id,
                                MISSING_REQUIRED_CLIENT_CAPABILITY,
                                f"the client does not support {capability}",
                            )
                            continue
                        key = input_key(event.method, event.seq, event.key)
                        pending[key] = ({"method": event.method, "params": event.params}, item.reply)
                    case _:
                        pass
                if loop.time() - refreshed > DRIVER_REFRESH_SECONDS:
                    refreshed = loop.time()
                    if not await host.seen(task_id):
                        return  # cancelled: the worker was told; nothing left to follow
        except asyncio.CancelledError:
            raise  # this replica stops: its tasks are reported failed once their refreshes stop
        except Exception:
            _log.exception("worker.task.failed", task_id=task_id)
            with contextlib.suppress(Exception):
                await host.fail(task_id, INTERNAL_ERROR, "the edge failed while following this task")
        finally:
            self._calls.pop(call_id, None)

    # -- what any replica does to a task's worker call (tasks/update, tasks/cancel) ----------------

    def answer(self, reply_subject: str, call_id: str, result: dict[str, Any]) -> None:
        with contextlib.suppress(nats.errors.Error):
            self.lane.publish(reply_subject, encode(WorkerClientAnswer(call_id=call_id, result=result)))

    def answer_error(self, reply_subject: str, call_id: str, code: int, message: str) -> None:
        answer = WorkerClientAnswer(call_id=call_id, error_code=code, error_message=message)
        with contextlib.suppress(nats.errors.Error):
            self.lane.publish(reply_subject, encode(answer))

    def cancel(self, owner_id: str, call_id: str, reason: str) -> None:
        self._cancel(owner_id, call_id, reason)

    def _take_input(
        self,
        ctx: CallContext,
        request: WorkerClientRequest,
        reply_to: str,
        pending: dict[str, WorkerClientRequest],
    ) -> None:
        """A question in the stateless era: answered at once from ``inputResponses`` when they hold its
        key, else kept for the ``input_required`` result. A capability the client did not declare is
        MissingRequiredClientCapability (-32021), as the spec says."""
        capability = CAPABILITY_OF.get(request.method)
        if capability is not None and capability not in ctx.client_capabilities:
            raise RpcError(
                MISSING_REQUIRED_CLIENT_CAPABILITY,
                f"Missing required client capability: {capability}",
                {"requiredCapabilities": {capability: {}}},
            )
        key = input_key(request.method, request.seq, request.key)
        answer = ctx.inputs.responses.get(key) if ctx.inputs is not None else None
        if answer is None:
            pending[key] = request
            return
        with contextlib.suppress(nats.errors.Error):
            self.lane.publish(reply_to, encode(WorkerClientAnswer(call_id=request.call_id, result=answer)))

    def _input_required(
        self,
        handler: WorkerHandler,
        ctx: CallContext,
        pending: dict[str, WorkerClientRequest],
        state: _CallState,
    ) -> InputRequired:
        """The questions to send, and where the retry picks the call up: just before the first of them,
        so the worker asks them again (same reply subjects) on the replica the retry reaches."""
        requests = {key: {"method": q.method, "params": q.params} for key, q in pending.items()}
        first = min(q.seq for q in pending.values())
        call_id = ctx.worker_call_id or ""
        return InputRequired(requests, ResumePoint(call_id, max(first - 1, 0), state.wall_deadline))

    async def _ask_client(self, ctx: CallContext, request: WorkerClientRequest, reply_to: str) -> None:
        ctx.worker_seq = request.seq  # the request is written to the stream before the first await
        capability = _CAPABILITY_OF.get(request.method)
        answer: WorkerClientAnswer
        if capability is not None and capability not in ctx.client_capabilities:
            answer = WorkerClientAnswer(
                call_id=request.call_id,
                error_code=INVALID_REQUEST,
                error_message=f"the client does not support {capability}",
            )
        else:
            try:
                result = await ctx.request_client(request.method, request.params, request.timeout_ms / 1000)
                answer = WorkerClientAnswer(call_id=request.call_id, result=result)
            except ClientRequestError as exc:
                if ctx.cancelled.is_set():
                    return  # the call is being cancelled: WorkerCancel stops the handler, no answer
                answer = WorkerClientAnswer(
                    call_id=request.call_id, error_code=exc.code, error_message=exc.message
                )
        with contextlib.suppress(nats.errors.Error):
            self.lane.publish(reply_to, encode(answer))

    def _cancel(self, owner_id: str, call_id: str, reason: str) -> None:
        with contextlib.suppress(nats.errors.Error):
            self.lane.publish(
                worker_cancel_subject(owner_id), encode(WorkerCancel(call_id=call_id, reason=reason))
            )
