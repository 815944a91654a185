"""The context a handler sees: one call being served (progress, log messages, requests to the client,
cancellation), and everything it sends kept for an adoption by another edge replica."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

import msgspec

from skillrelay_worker.content import text
from skillrelay_worker.errors import INTERNAL_ERROR, REQUEST_TIMEOUT, ClientRequestError
from skillrelay_worker.message import Message
from skillrelay_worker.protocol import (
    LOG_LEVELS,
    LogLevel,
    WorkerCall,
    WorkerClientAnswer,
    WorkerClientRequest,
    WorkerLog,
    WorkerProgress,
    WorkerTaskStart,
)

if TYPE_CHECKING:
    from skillrelay_worker.worker import Worker

_LOG_RANK = {name: rank for rank, name in enumerate(LOG_LEVELS)}
_answer_decoder = msgspec.json.Decoder(WorkerClientAnswer)
# A sequenced event as sent: its seq, the message, and its reply subject (finals, client requests).
_SentEvent = tuple[int, Message, str | None]


class WorkerContext:
    """One call being served: report progress, log, ask the client, notice cancellation."""

    def __init__(self, worker: Worker, call: WorkerCall, events_subject: str) -> None:
        self._worker = worker
        self.call = call
        self._events_subject = events_subject
        self.cancelled = asyncio.Event()
        self._seq = 0
        # Every sequenced event sent, kept while the call may still be adopted by another edge replica.
        self._sent: list[_SentEvent] = []
        self.finished = False
        self._task_started = False

    @property
    def session_id(self) -> str | None:
        return self.call.session_id

    @property
    def integration_id(self) -> str:
        return self.call.integration_id

    @property
    def client_capabilities(self) -> dict[str, Any]:
        return self.call.client_capabilities

    @property
    def meta(self) -> dict[str, Any]:
        """The MCP request's ``_meta`` (without its progress token)."""
        return self.call.meta

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _send(self, seq: int, message: Message, reply: str | None = None) -> None:
        """Send a sequenced event and keep it (for an adoption's replay)."""
        self._sent.append((seq, message, reply))
        self._worker._publish(self._events_subject, message, reply)

    def _adopt(self, events_subject: str, after_seq: int) -> None:
        """Send every later event to ``events_subject``, first those kept with ``seq > after_seq``
        (in order: publishing does not wait, so no new event can come in between)."""
        self._events_subject = events_subject
        for seq, message, reply in self._sent:
            if seq > after_seq:
                if isinstance(message, WorkerClientRequest) and reply not in self._worker._answers:
                    continue  # answered already: asking again would ask the client twice
                self._worker._publish(events_subject, message, reply)

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        """``notifications/progress`` on the client's request; nothing if the client gave no token."""
        if self.call.progress_token is None:
            return
        seq = self._next_seq()
        self._send(
            seq,
            WorkerProgress(
                call_id=self.call.call_id, seq=seq, progress=progress, total=total, message=message
            ),
        )

    async def log(self, level: str, data: Any, logger: str | None = None) -> None:
        """``notifications/message``; dropped here when below the client's logging/setLevel."""
        if level not in _LOG_RANK:
            raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LOG_LEVELS)}")
        minimum = self.call.log_level
        if minimum is not None and _LOG_RANK[level] < _LOG_RANK.get(minimum, 0):
            return
        seq = self._next_seq()
        self._send(
            seq,
            WorkerLog(
                call_id=self.call.call_id,
                seq=seq,
                level=cast("LogLevel", level),
                data=data,
                logger=logger,
            ),
        )

    async def start_task(self, status_message: str | None = None) -> bool:
        """Go on as a task (Tasks extension of 2026-07-28): the client's request is answered at once
        with a task it polls, and what the handler returns, raises or asks from here on reaches the
        client through that task. Call it before long work. Returns False, and changes nothing, when the
        call cannot become a task (the client did not declare the extension, the ability does not allow
        tasks, a 2025 session): the handler then simply goes on and answers the request itself."""
        if not self.call.tasks or self._task_started:
            return self._task_started
        self._task_started = True
        seq = self._next_seq()
        self._send(seq, WorkerTaskStart(call_id=self.call.call_id, seq=seq, status_message=status_message))
        return True

    async def request_client(
        self, method: str, params: dict[str, Any], timeout: float = 60.0, *, key: str | None = None
    ) -> dict[str, Any]:
        """Ask the client and return its result (raises ``ClientRequestError``). A 2025 client gets a
        server-to-client request; a 2026-07-28 client gets the question in an ``input_required`` result
        and answers by retrying its request, while this handler waits here (``key`` names the question
        there; ``timeout`` bounds the wait either way)."""
        seq = self._next_seq()
        request = WorkerClientRequest(
            call_id=self.call.call_id,
            seq=seq,
            method=method,
            params=params,
            timeout_ms=int(timeout * 1000),
            key=key,
        )
        # Answered on the worker's inbox, so an edge replica adopting the call can answer it too (the
        # request is republished to it with the same reply subject).
        reply_to, waiter = self._worker._expect_answer(self.call.call_id, seq)
        try:
            self._send(seq, request, reply_to)
            # A little longer than the edge's own wait, so the edge's timeout answer wins.
            reply = await asyncio.wait_for(waiter, timeout + 2.0)
        except TimeoutError:
            raise ClientRequestError(
                REQUEST_TIMEOUT, f"{method}: the client did not answer in time"
            ) from None
        finally:
            self._worker._forget_answer(reply_to)
        try:
            answer = _answer_decoder.decode(reply.data)
        except msgspec.DecodeError:
            raise ClientRequestError(INTERNAL_ERROR, f"{method}: unreadable answer from the edge") from None
        if answer.result is None:
            raise ClientRequestError(
                answer.error_code or INTERNAL_ERROR, answer.error_message or f"{method} failed"
            )
        return answer.result

    async def sample(
        self,
        messages: str | list[dict[str, Any]],
        max_tokens: int,
        *,
        system_prompt: str | None = None,
        temperature: float | None = None,
        model_preferences: dict[str, Any] | None = None,
        stop_sequences: list[str] | None = None,
        include_context: str | None = None,
        timeout: float = 60.0,
        key: str | None = None,
    ) -> dict[str, Any]:
        """``sampling/createMessage``: ask the client's LLM. A ``str`` is one user text message."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": text(messages)}]
        params: dict[str, Any] = {"messages": messages, "maxTokens": max_tokens}
        optional = {
            "systemPrompt": system_prompt,
            "temperature": temperature,
            "modelPreferences": model_preferences,
            "stopSequences": stop_sequences,
            "includeContext": include_context,
        }
        params.update({key: value for key, value in optional.items() if value is not None})
        return await self.request_client("sampling/createMessage", params, timeout, key=key)

    async def elicit(
        self,
        message: str,
        requested_schema: dict[str, Any],
        *,
        timeout: float = 300.0,
        key: str | None = None,
    ) -> dict[str, Any]:
        """``elicitation/create`` (form mode): returns ``{"action", "content"?}``."""
        return await self.request_client(
            "elicitation/create", {"message": message, "requestedSchema": requested_schema}, timeout, key=key
        )

    async def list_roots(self, *, timeout: float = 30.0, key: str | None = None) -> list[dict[str, Any]]:
        """``roots/list``: the client's roots."""
        result = await self.request_client("roots/list", {}, timeout, key=key)
        roots = result.get("roots", [])
        return roots if isinstance(roots, list) else []
