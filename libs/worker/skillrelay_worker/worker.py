"""The worker SDK: write ability code in your own process and serve it to Skillrelay over NATS.

```python
from skillrelay_worker import Worker, WorkerContext, text

worker = Worker("everything")   # the credential comes from SKILLRELAY_WORKER_CREDENTIAL

@worker.tool("add")
async def add(ctx: WorkerContext, args: dict[str, Any]) -> str:
    await ctx.report_progress(1, 2, "adding")
    return str(args["a"] + args["b"])

worker.run("nats://127.0.0.1:4222")       # or: await worker.start(url) ... await worker.stop()
```

An ability with handler ``{"type": "worker", "subject": "everything"}`` of the credential's owner is then
served by every process running this worker (one NATS queue group per owner and subject, so start more
processes to scale). The worker credential (``Worker(subject, credential=…)`` or the environment
variable; the owner creates it in the registry) is all the worker needs: it names the owner whose
subjects it serves, and the bus lets it use those and nothing else. The protocol is described in
``skillrelay_worker.protocol``.

A call whose edge replica dies is not lost: the worker keeps the call's events (progress, logs, client
requests, the answer) and, should its answer find nobody listening, keeps the call for
``adopt_grace`` seconds, so another replica can adopt it (``WorkerAdopt``) and get every event it missed.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import nats.errors
import structlog

from skillrelay_worker.connection import Connect, Connection
from skillrelay_worker.content import (
    PromptOutput,
    ResourceOutput,
    ToolOutput,
    ToolResult,
    resource_contents,
    text,
    tool_result,
)
from skillrelay_worker.context import WorkerContext
from skillrelay_worker.correlation import CORRELATION_HEADER, bind_correlation_id
from skillrelay_worker.credential import ENVIRONMENT_VARIABLE, WorkerCredential
from skillrelay_worker.errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    REQUEST_TIMEOUT,
    RESOURCE_NOT_FOUND,
    ClientRequestError,
    HandlerError,
    ToolError,
)
from skillrelay_worker.logs import RepeatedWarning
from skillrelay_worker.message import Message
from skillrelay_worker.nats_lane import NO_RESPONDERS, LaneMessage, NatsLane
from skillrelay_worker.process import run_until_signalled
from skillrelay_worker.protocol import (
    WorkerAdopt,
    WorkerAdopted,
    WorkerCall,
    WorkerCancel,
    WorkerError,
    WorkerHeartbeat,
    WorkerResult,
)
from skillrelay_worker.subjects import (
    new_worker_inbox,
    worker_adopt_subject,
    worker_call_subject,
    worker_cancel_subject,
)
from skillrelay_worker.uri_templates import compile_uri_template

# Room left in a result's message for its headers under the server's max_payload.
RESULT_HEADROOM_BYTES = 4096
_log = structlog.get_logger("skillrelay.worker")
_encoder = msgspec.json.Encoder()

_call_decoder = msgspec.json.Decoder(WorkerCall)
_cancel_decoder = msgspec.json.Decoder(WorkerCancel)
_adopt_decoder = msgspec.json.Decoder(WorkerAdopt)
# Reply subjects under the worker's inbox: ``<inbox>.f.<callId>`` for a call's final answer (only a
# "no responders" status ever comes back there), ``<inbox>.q.<callId>.<seq>`` for a client's answer.
_FINAL_REPLY = "f"
_ANSWER_REPLY = "q"


ToolFn = Callable[[WorkerContext, dict[str, Any]], Awaitable[ToolOutput]]
# A resource handler gets the URI asked for and the template variables.
ResourceFn = Callable[[WorkerContext, str, dict[str, str]], Awaitable[ResourceOutput]]
PromptFn = Callable[[WorkerContext, dict[str, str]], Awaitable[PromptOutput]]
# A completion handler gets the argument name, its partial value and the arguments already chosen.
CompletionFn = Callable[[WorkerContext, str, str, dict[str, str]], Awaitable[list[str]]]


@dataclass(frozen=True)
class _Template:
    template: str
    pattern: re.Pattern[str]
    mime_type: str | None
    handler: ResourceFn


class Worker:
    """A set of handlers served on ``worker.<ownerId>.<subject>``: the abilities of one owner whose
    handler is ``{"type": "worker", "subject": subject}``."""

    def __init__(
        self,
        subject: str,
        *,
        credential: str | None = None,
        shutdown_grace: float = 10.0,
        adopt_grace: float = 120.0,
        adopt_max_calls: int = 10_000,
    ) -> None:
        """``credential``: the owner's worker credential (``sr_worker_…``, from the registry); None reads
        ``SKILLRELAY_WORKER_CREDENTIAL``. It names the owner whose subjects the worker serves and is
        what the worker connects to NATS with: nothing else is needed.

        ``adopt_grace``: how long a finished call whose answer reached no edge replica is kept for
        another replica to adopt; at most ``adopt_max_calls`` such calls are kept (oldest dropped)."""
        self.subject = subject
        raw = credential if credential is not None else os.environ.get(ENVIRONMENT_VARIABLE)
        self.credential = WorkerCredential.parse(raw) if raw else None
        self.shutdown_grace = shutdown_grace
        self.adopt_grace = adopt_grace
        self.adopt_max_calls = adopt_max_calls
        self._tools: dict[str, ToolFn] = {}
        self._templates: dict[str, _Template] = {}
        self._prompts: dict[str, tuple[PromptFn, str | None]] = {}
        self._completions: dict[str, CompletionFn] = {}
        self._lane: Connection | None = None
        self._publish_failed = RepeatedWarning(_log, "worker.publish.failed")
        self._call_subscription: int | None = None
        self._inflight: dict[str, tuple[asyncio.Task[None], WorkerContext]] = {}
        # Calls finished in this second and the one before (two generations, swept once a second):
        # a "no responders" status for their answer moves them to ``_undelivered``.
        self._finished: dict[str, WorkerContext] = {}
        self._finished_before: dict[str, WorkerContext] = {}
        # Finished calls whose answer reached nobody, with the loop time they are dropped at.
        self._undelivered: dict[str, tuple[WorkerContext, float]] = {}
        self._answers: dict[str, asyncio.Future[LaneMessage]] = {}
        self._inbox = ""
        self.owner_id = ""
        self._sweeper: asyncio.TimerHandle | None = None

    # -- registration ----------------------------------------------------------------------------

    def tool(self, name: str) -> Callable[[ToolFn], ToolFn]:
        def register(fn: ToolFn) -> ToolFn:
            self._tools[name] = fn
            return fn

        return register

    def resource_template(
        self, uri_template: str, *, mime_type: str | None = None
    ) -> Callable[[ResourceFn], ResourceFn]:
        """Serve resources whose URI matches ``uri_template`` (also usable with a fixed URI)."""

        def register(fn: ResourceFn) -> ResourceFn:
            self._templates[uri_template] = _Template(
                uri_template, compile_uri_template(uri_template), mime_type, fn
            )
            return fn

        return register

    resource = resource_template

    def prompt(self, name: str, *, description: str | None = None) -> Callable[[PromptFn], PromptFn]:
        def register(fn: PromptFn) -> PromptFn:
            self._prompts[name] = (fn, description)
            return fn

        return register

    def completion(self, ref: str) -> Callable[[CompletionFn], CompletionFn]:
        """Complete arguments of the prompt named ``ref`` (or of the resource template ``ref``)."""

        def register(fn: CompletionFn) -> CompletionFn:
            self._completions[ref] = fn
            return fn

        return register

    @property
    def names(self) -> dict[str, list[str]]:
        return {
            "tools": sorted(self._tools),
            "resources": sorted(self._templates),
            "prompts": sorted(self._prompts),
            "completions": sorted(self._completions),
        }

    # -- running ---------------------------------------------------------------------------------

    async def start(
        self,
        nats_url: str,
        *,
        instance_id: str | None = None,
        connect: Connect = NatsLane.connect,
        owner_id: str | None = None,
    ) -> None:
        """Connect and take calls (queue group ``worker.<ownerId>.<subject>``). The worker speaks over
        a lean NATS connection (``nats_lane.NatsLane``: no task switch per message) unless ``connect``
        opens another ``Connection``.

        With a credential the worker connects as it (whatever user ``nats_url`` names is replaced) and
        serves the credential's owner. ``owner_id`` is for a trusted connection without one (a
        service's own credentials in ``nats_url``, e.g. in tests)."""
        if self.credential is not None:
            nats_url = self.credential.connect_url(nats_url)
            owner_id = self.credential.owner_id
        if not owner_id:
            raise ValueError(
                f"a worker needs its owner's worker credential: Worker(subject, credential=…) or "
                f"{ENVIRONMENT_VARIABLE} (create one with POST /api/v1/worker/credential/create)"
            )
        self.owner_id = owner_id
        instance = instance_id or f"worker-{self.subject}-{uuid.uuid4().hex[:8]}"
        lane = self._lane = await connect(nats_url, instance)
        subject = worker_call_subject(owner_id, self.subject)
        self._inbox = new_worker_inbox(owner_id)
        self._call_subscription = lane.subscribe(subject, self._on_call, queue=subject)
        lane.subscribe(worker_cancel_subject(owner_id), self._on_cancel)
        lane.subscribe(worker_adopt_subject(owner_id), self._on_adopt)
        lane.subscribe(f"{self._inbox}.>", self._on_inbox)
        await lane.flush()
        self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)
        _log.info("worker.started", subject=subject, handlers=self.names)

    async def stop(self) -> None:
        """Graceful drain: take no new calls, let calls in flight finish (up to ``shutdown_grace``),
        cancel the rest, then drain the connection."""
        if self._lane is None:
            return
        if self._call_subscription is not None:
            self._lane.unsubscribe(self._call_subscription)
            self._call_subscription = None
        tasks = [task for task, _ in self._inflight.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.shutdown_grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2.0)
        await self._lane.close()
        self._lane = None
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        _log.info("worker.stopped", subject=self.subject)

    def run(self, nats_url: str, *, owner_id: str | None = None) -> None:
        """Serve until SIGINT/SIGTERM, then drain. On uvloop where it is installed: a worker is mostly
        NATS I/O, and uvloop halves its per-call overhead."""
        run_until_signalled(lambda: self.start(nats_url, owner_id=owner_id), self.stop, uvloop=True)

    def _publish(self, subject: str, message: Message, reply: str | None = None) -> None:
        if self._lane is None:
            raise RuntimeError("the worker is not started")
        try:
            self._lane.publish(subject, _encoder.encode(message), reply=reply or "")
        except nats.errors.Error as exc:
            # NATS is away for longer than its buffer lasts, or the worker is closing: the edge's
            # heartbeat watch turns the silence into a clear error; the event stays kept for adoption.
            self._publish_failed(subject=subject, error=str(exc))

    # -- adoption: answers that reached nobody, and edge replicas taking over a call -----------------

    def _final_reply(self, call_id: str) -> str:
        return f"{self._inbox}.{_FINAL_REPLY}.{call_id}"

    def _expect_answer(self, call_id: str, seq: int) -> tuple[str, asyncio.Future[LaneMessage]]:
        reply_to = f"{self._inbox}.{_ANSWER_REPLY}.{call_id}.{seq}"
        waiter: asyncio.Future[LaneMessage] = asyncio.get_running_loop().create_future()
        self._answers[reply_to] = waiter
        return reply_to, waiter

    def _forget_answer(self, reply_to: str) -> None:
        self._answers.pop(reply_to, None)

    def _on_inbox(self, msg: LaneMessage) -> None:
        undelivered = msg.status == NO_RESPONDERS
        kind, _, rest = msg.subject[len(self._inbox) + 1 :].partition(".")
        if kind == _FINAL_REPLY:
            if undelivered:
                self._keep_undelivered(rest)
        elif kind == _ANSWER_REPLY and not undelivered:
            # "No responders" for a client request: its edge is gone; keep waiting, an adopting
            # replica republishes the request and answers here.
            waiter = self._answers.pop(msg.subject, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(msg)

    def _keep_undelivered(self, call_id: str) -> None:
        ctx = self._finished.pop(call_id, None) or self._finished_before.pop(call_id, None)
        if ctx is None:
            return
        self._undelivered[call_id] = (ctx, asyncio.get_running_loop().time() + self.adopt_grace)
        while len(self._undelivered) > self.adopt_max_calls:
            del self._undelivered[next(iter(self._undelivered))]
        _log.info("worker.call.undelivered", call_id=call_id, name=ctx.call.name)

    def _sweep(self) -> None:
        self._finished_before, self._finished = self._finished, {}
        now = asyncio.get_running_loop().time()
        # Kept with the same grace, so the oldest come first: stop at the first one still kept.
        while self._undelivered:
            call_id, (_, drop_at) = next(iter(self._undelivered.items()))
            if drop_at > now:
                break
            del self._undelivered[call_id]
        self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)

    def _held(self, call_id: str) -> WorkerContext | None:
        """The call if this worker still holds it: running, just finished, or finished undelivered."""
        running = self._inflight.get(call_id)
        if running is not None:
            return running[1]
        kept = self._undelivered.pop(call_id, None)
        return (
            (kept[0] if kept else None) or self._finished.get(call_id) or self._finished_before.get(call_id)
        )

    def _on_adopt(self, msg: LaneMessage) -> None:
        try:
            adopt = _adopt_decoder.decode(msg.data)
        except msgspec.DecodeError:
            return
        ctx = self._held(adopt.call_id) if msg.reply else None
        if ctx is None:
            return  # not ours: another worker may hold it; silence means nobody does
        if ctx.finished:
            # Its answer goes out again: should that reach nobody too, it is kept again.
            self._finished[adopt.call_id] = ctx
        self._publish(msg.reply, WorkerAdopted(call_id=adopt.call_id, last_seq=ctx._seq))
        _log.info("worker.call.adopted", call_id=adopt.call_id, after_seq=adopt.after_seq)
        ctx._adopt(adopt.events_subject, adopt.after_seq)

    def _on_cancel(self, msg: LaneMessage) -> None:
        try:
            cancel = _cancel_decoder.decode(msg.data)
        except msgspec.DecodeError:
            return
        entry = self._inflight.get(cancel.call_id)
        if entry is not None:
            task, ctx = entry
            ctx.cancelled.set()
            task.cancel()

    def _on_call(self, msg: LaneMessage) -> None:
        if not msg.reply:
            return
        try:
            call = _call_decoder.decode(msg.data)
        except msgspec.DecodeError as exc:
            _log.warning("worker.call.unreadable", error=str(exc))
            return
        ctx = WorkerContext(self, call, msg.reply)
        correlation = (msg.headers or {}).get(CORRELATION_HEADER) or call.call_id
        task = asyncio.create_task(self._serve(ctx, correlation), name=f"worker-call-{call.call_id}")
        self._inflight[call.call_id] = (task, ctx)
        task.add_done_callback(lambda _: self._inflight.pop(call.call_id, None))

    async def _serve(self, ctx: WorkerContext, correlation: str) -> None:
        # This task's own context: the binding ends with it, no unbinding needed.
        bind_correlation_id(correlation)
        await self._serve_call(ctx)

    async def _serve_call(self, ctx: WorkerContext) -> None:
        call = ctx.call
        started = time.perf_counter()
        heartbeat = _Heartbeat(self, ctx)
        outcome = "ok"
        try:
            # The edge stops waiting at timeout_ms; stop the handler soon after, should its cancel be lost.
            async with asyncio.timeout(call.timeout_ms / 1000 + 5.0):
                result = await self._dispatch(ctx)
            final: WorkerResult | WorkerError = WorkerResult(call_id=call.call_id, result=result)
        except HandlerError as exc:
            outcome = "error"
            final = WorkerError(call_id=call.call_id, code=exc.code, message=exc.message)
        except asyncio.CancelledError:
            # Cancelled by the edge (nobody waits for an answer) or by shutdown (tell the edge).
            heartbeat.cancel()
            if not ctx.cancelled.is_set():
                seq = ctx._next_seq()
                ctx._send(
                    seq,
                    WorkerError(
                        call_id=call.call_id, seq=seq, code=INTERNAL_ERROR, message="the worker shut down"
                    ),
                )
            _log.info("worker.call.cancelled", call_id=call.call_id, name=call.name)
            return
        except TimeoutError:
            outcome = "timeout"
            final = WorkerError(call_id=call.call_id, code=REQUEST_TIMEOUT, message="the handler timed out")
        except Exception:
            outcome = "failed"
            _log.exception("worker.handler.failed", kind=call.ability_kind, name=call.name)
            if call.ability_kind == "tool":
                final = WorkerResult(
                    call_id=call.call_id,
                    result=ToolResult(
                        [text(f"Tool {call.name!r} failed inside the worker")], is_error=True
                    ).to_json(),
                )
            else:
                final = WorkerError(
                    call_id=call.call_id,
                    code=INTERNAL_ERROR,
                    message=f"{call.name!r} failed inside the worker",
                )
        finally:
            heartbeat.cancel()
        final = self._fitting(call, final)
        final.seq = ctx._next_seq()
        # Published with a reply subject: "no responders" there means its edge is gone (_on_inbox).
        ctx.finished = True
        self._finished[call.call_id] = ctx
        ctx._send(final.seq, final, self._final_reply(call.call_id))
        if outcome != "ok":
            _log.info(
                "worker.call",
                kind=call.ability_kind,
                name=call.name,
                outcome=outcome,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
            )

    def _fitting(self, call: WorkerCall, final: WorkerResult | WorkerError) -> WorkerResult | WorkerError:
        """A result larger than one NATS message would never reach the edge (its client would only
        see the call go silent): answer that it is too large, as a tool error or a JSON-RPC error."""
        if not isinstance(final, WorkerResult) or self._lane is None:
            return final
        size = len(_encoder.encode(final))
        limit = self._lane.max_payload - RESULT_HEADROOM_BYTES
        if size <= limit:
            return final
        _log.warning(
            "worker.result.too_large", kind=call.ability_kind, name=call.name, size=size, limit=limit
        )
        message = f"{call.name!r} answered {size} bytes; at most {limit} fit one message"
        if call.ability_kind == "tool":
            return WorkerResult(
                call_id=call.call_id, result=ToolResult([text(message)], is_error=True).to_json()
            )
        return WorkerError(call_id=call.call_id, code=INTERNAL_ERROR, message=message)

    async def _dispatch(self, ctx: WorkerContext) -> dict[str, Any]:
        call = ctx.call
        if call.ability_kind == "tool":
            tool = self._tools.get(call.name)
            if tool is None:
                raise HandlerError(f"Unknown tool: {call.name}", INVALID_PARAMS)
            try:
                return tool_result(await tool(ctx, call.arguments))
            except (ToolError, ClientRequestError) as exc:
                # Also a refused or failed sampling/elicitation: the model should see why.
                return ToolResult([text(str(exc))], is_error=True).to_json()
        if call.ability_kind == "resource":
            return await self._read_resource(ctx)
        if call.ability_kind == "prompt":
            entry = self._prompts.get(call.name)
            if entry is None:
                raise HandlerError(f"Unknown prompt: {call.name}", INVALID_PARAMS)
            prompt, description = entry
            arguments = {key: str(value) for key, value in call.arguments.items()}
            output = await prompt(ctx, arguments)
            result: dict[str, Any] = output if isinstance(output, dict) else {"messages": output}
            if description and "description" not in result:
                result["description"] = description
            return result
        completer = self._completions.get(call.name)
        argument = call.completion_argument or {}
        if completer is None:
            values: list[str] = []
        else:
            context = {key: str(value) for key, value in (call.completion_context or {}).items()}
            values = await completer(
                ctx, str(argument.get("name", "")), str(argument.get("value", "")), context
            )
        return {"completion": {"values": values[:100], "total": len(values), "hasMore": len(values) > 100}}

    async def _read_resource(self, ctx: WorkerContext) -> dict[str, Any]:
        call = ctx.call
        uri = call.uri or call.name
        template = self._templates.get(call.name)
        match = template.pattern.match(uri) if template else None
        if template is None or match is None:
            # The edge may send the URI only: find the first template that matches it.
            for candidate in self._templates.values():
                match = candidate.pattern.match(uri)
                if match:
                    template = candidate
                    break
        if template is None or match is None:
            raise HandlerError(f"Resource not found: {uri}", RESOURCE_NOT_FOUND)
        output = await template.handler(ctx, uri, match.groupdict())
        return {"contents": resource_contents(uri, template.mime_type, output)}


class _Heartbeat:
    """Tells the edge the handler still runs, every ``heartbeat_ms`` (a timer, not a task per call)."""

    def __init__(self, worker: Worker, ctx: WorkerContext) -> None:
        self._worker = worker
        self._ctx = ctx
        self._interval = max(ctx.call.heartbeat_ms, 50) / 1000
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(self._interval, self._beat)

    def _beat(self) -> None:
        self._worker._publish(self._ctx._events_subject, WorkerHeartbeat(call_id=self._ctx.call.call_id))
        self._handle = self._loop.call_later(self._interval, self._beat)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def new_call_id() -> str:
    return uuid.uuid4().hex
