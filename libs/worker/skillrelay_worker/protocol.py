"""The worker protocol: how an edge replica runs a ``worker`` ability and talks to it while it runs.

One call, on core NATS (subjects in ``skillrelay_worker.subjects``):

1. The edge publishes a ``WorkerCall`` on ``worker.<ownerId>.<subject>`` (the owner of the ability)
   with the reply subject set to its own per-call events subject
   (``workerev.<edgeKey>.<ownerId>.<callId>``). Workers of that subject form a queue group, so exactly
   one takes it.
   No worker at all: NATS answers at once with a "no responders" status on the events subject.
2. The worker sends ``WorkerEvent`` messages to the events subject, in order: progress, log messages,
   heartbeats while the handler runs, and exactly one final ``WorkerResult`` or ``WorkerError``.
3. A server-to-client request (sampling, elicitation, roots) is a NATS *request* carrying
   ``WorkerClientRequest`` to the events subject; the edge relays it to the MCP client and replies
   with ``WorkerClientAnswer``. The client's answer may reach any edge replica; that replica hands it
   over NATS to the one holding the call (``ClientResponseRelayed``, a message between edge replicas).
4. Cancellation (``notifications/cancelled``, the edge's timeout, a client gone) is a ``WorkerCancel``
   broadcast on ``workerctl.<ownerId>.cancel``; the worker that holds the call cancels its handler.
5. Adoption, when the edge replica holding a call dies. Every event of a call but heartbeats carries
   ``seq`` (1, 2, 3 … per call), and the worker keeps a running call's sequenced events in memory. It
   publishes the final result or error with a reply subject on its own inbox: a NATS "no responders"
   status there (nobody subscribed to the events subject: the edge died) means the answer was not
   delivered, and the worker keeps the call for adoption for a grace period (120 s by default). Another
   edge replica broadcasts ``WorkerAdopt`` on ``workerctl.<ownerId>.adopt`` (a NATS request); the worker
   holding the call (running, or finished and not delivered) replies ``WorkerAdopted``, sends every later
   event to the new events subject and first republishes, in order, its retained events with ``seq`` above
   ``after_seq``. The edge drops an event whose ``seq`` it has already seen, so duplicates are harmless.
   No worker holds the call: no reply, and the adopting edge answers the client with a final error.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from skillrelay_worker.message import Message

WorkerKind = Literal["tool", "resource", "prompt", "completion"]
LogLevel = Literal["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
LOG_LEVELS: tuple[str, ...] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)


class WorkerCall(Message, kw_only=True):
    """Run one handler. ``name`` is the tool or prompt name, the resource template (``uri`` holds the
    URI asked for), or for completions the referenced prompt name / resource template."""

    call_id: str
    ability_kind: WorkerKind
    name: str
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)
    uri: str | None = None
    # completion/complete: which argument is being completed, and the arguments already chosen.
    completion_argument: dict[str, Any] | None = None
    completion_context: dict[str, Any] | None = None
    integration_id: str = ""
    session_id: str | None = None
    request_id: str | int | None = None
    progress_token: str | int | None = None
    # The session's logging/setLevel; the SDK drops log messages below it before sending them.
    log_level: str | None = None
    client_capabilities: dict[str, Any] = msgspec.field(default_factory=dict)
    # The request's ``_meta`` without the progress token (e.g. trace context, client-defined keys).
    meta: dict[str, Any] = msgspec.field(default_factory=dict)
    timeout_ms: int = 30_000
    # How often the worker sends a heartbeat while the handler runs; the edge gives up after 3 misses.
    heartbeat_ms: int = 1_000
    # The edge may answer this call with a task (Tasks extension of 2026-07-28): the client declared
    # the extension and the ability allows tasks. ``WorkerContext.start_task`` does nothing without it.
    tasks: bool = False


class WorkerProgress(Message, kw_only=True):
    call_id: str
    # Position among the call\'s events (1, 2, 3 …); 0 from a worker older than adoption.
    seq: int = 0
    progress: float
    total: float | None = None
    message: str | None = None


class WorkerLog(Message, kw_only=True):
    call_id: str
    # Position among the call\'s events (1, 2, 3 …); 0 from a worker older than adoption.
    seq: int = 0
    level: LogLevel
    data: Any = None
    logger: str | None = None


class WorkerHeartbeat(Message, kw_only=True):
    """The handler is still running (sent while it takes longer than ``heartbeat_ms``)."""

    call_id: str


class WorkerResult(Message, kw_only=True):
    """The MCP result: a ``CallToolResult`` / ``ReadResourceResult`` / ``GetPromptResult`` /
    ``CompleteResult`` body."""

    call_id: str
    # Position among the call\'s events (1, 2, 3 …); 0 from a worker older than adoption.
    seq: int = 0
    result: dict[str, Any]


class WorkerError(Message, kw_only=True):
    """The call failed. ``code`` is a JSON-RPC error code (-32602 bad arguments or unknown name,
    -32002 resource not found, -32603 handler failure, -32800 cancelled); ``message`` is safe to show."""

    call_id: str
    # Position among the call\'s events (1, 2, 3 …); 0 from a worker older than adoption.
    seq: int = 0
    code: int
    message: str


class WorkerTaskStart(Message, kw_only=True):
    """The handler goes on as a task: the edge answers the client's request with a task (its result,
    error and later questions are read with ``tasks/get``) and follows the rest of the call for it."""

    call_id: str
    seq: int = 0
    status_message: str | None = None


WorkerEvent = WorkerProgress | WorkerLog | WorkerHeartbeat | WorkerResult | WorkerError | WorkerTaskStart


class WorkerClientRequest(Message, kw_only=True):
    """Ask the MCP client something during the call (sampling/createMessage, elicitation/create,
    roots/list). Sent as a NATS request to the events subject; the answer is ``WorkerClientAnswer``."""

    call_id: str
    # Position among the call\'s events (1, 2, 3 …); 0 from a worker older than adoption.
    seq: int = 0
    method: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    timeout_ms: int = 60_000
    # The handler's name for the question: its ``inputRequests`` key for a 2026-07-28 client (and
    # the ``inputResponses`` key it is answered under); None lets the edge name it.
    key: str | None = None


class WorkerClientAnswer(Message, kw_only=True):
    """The client's answer: ``result`` on success, else a JSON-RPC ``error_code`` and message (also
    used when the client lacks the capability, timed out, or the call was cancelled)."""

    call_id: str
    result: dict[str, Any] | None = None
    error_code: int | None = None
    error_message: str | None = None


class WorkerCancel(Message, kw_only=True):
    """Broadcast to every worker; the one running ``call_id`` cancels it."""

    call_id: str
    reason: str = ""


class WorkerAdopt(Message, kw_only=True):
    """Broadcast to every worker as a NATS request: the worker holding ``call_id`` (running, or finished
    but undelivered) replies ``WorkerAdopted``, then sends the call's events with ``seq > after_seq`` and
    every later one to ``events_subject``."""

    call_id: str
    events_subject: str
    after_seq: int = 0


class WorkerAdopted(Message, kw_only=True):
    """The worker took the adoption; ``last_seq`` is the highest ``seq`` it has sent so far."""

    call_id: str
    last_seq: int = 0
