"""The worker SDK's pure parts: URI templates, result shaping, log filtering (no NATS)."""

from __future__ import annotations

from typing import Any

import pytest

from skillrelay_worker import ToolResult, Worker, WorkerContext, audio, embedded_resource, image, text
from skillrelay_worker.content import resource_contents, tool_result
from skillrelay_worker.message import Message
from skillrelay_worker.protocol import WorkerCall, WorkerLog, WorkerProgress, WorkerTaskStart
from skillrelay_worker.uri_templates import compile_uri_template


class RecordingWorker(Worker):
    def __init__(self) -> None:
        super().__init__("unit")
        self.published: list[Message] = []

    def _publish(self, subject: str, message: Message, reply: str | None = None) -> None:
        self.published.append(message)


def context(worker: Worker, **fields: Any) -> WorkerContext:
    call = WorkerCall(call_id="c1", ability_kind="tool", name="t", **fields)
    return WorkerContext(worker, call, "workerev.edge.c1")


@pytest.mark.parametrize(
    ("template", "uri", "expected"),
    [
        ("test://template/{id}/data", "test://template/123/data", {"id": "123"}),
        ("test://template/{id}/data", "test://template/1/2/data", None),
        ("file:///{+path}", "file:///a/b/c.txt", {"path": "a/b/c.txt"}),
        ("users://{org}/{user}", "users://acme/ada", {"org": "acme", "user": "ada"}),
        ("weird://a.b/{x}", "weird://aXb/1", None),
    ],
)
def test_uri_templates_match_level_one_and_reserved_expansion(
    template: str, uri: str, expected: dict[str, str] | None
) -> None:
    match = compile_uri_template(template).match(uri)
    assert (match.groupdict() if match else None) == expected


def test_tool_outputs_become_call_tool_results() -> None:
    assert tool_result("hi") == {"content": [{"type": "text", "text": "hi"}]}
    assert tool_result([image(b"\x89PNG")]) == {
        "content": [{"type": "image", "data": "iVBORw==", "mimeType": "image/png"}]
    }
    full = ToolResult([text("x")], structured_content={"n": 1}, is_error=True)
    assert tool_result(full) == {
        "content": [{"type": "text", "text": "x"}],
        "structuredContent": {"n": 1},
        "isError": True,
    }
    assert audio("UklGRg==")["mimeType"] == "audio/wav"
    assert embedded_resource("test://b", blob=b"\x00", mime_type="application/octet-stream")["resource"] == {
        "uri": "test://b",
        "mimeType": "application/octet-stream",
        "blob": "AA==",
    }


def test_resource_outputs_become_contents() -> None:
    assert resource_contents("test://t", "text/plain", "hello") == [
        {"uri": "test://t", "mimeType": "text/plain", "text": "hello"}
    ]
    assert resource_contents("test://b", None, b"\x01\x02") == [{"uri": "test://b", "blob": "AQI="}]
    item = {"uri": "test://x", "text": "given"}
    assert resource_contents("test://x", None, item) == [item]


async def test_logs_below_the_clients_level_are_not_sent() -> None:
    worker = RecordingWorker()
    ctx = context(worker, log_level="warning")
    await ctx.log("info", "dropped")
    await ctx.log("error", {"detail": 1}, logger="db")
    assert worker.published == [
        WorkerLog(call_id="c1", seq=1, level="error", data={"detail": 1}, logger="db")
    ]
    with pytest.raises(ValueError, match="unknown log level"):
        await ctx.log("loud", "x")


async def test_progress_needs_a_progress_token() -> None:
    worker = RecordingWorker()
    await context(worker).report_progress(1, 2)
    assert worker.published == []
    await context(worker, progress_token="tok").report_progress(1, 2, "half")
    assert worker.published == [WorkerProgress(call_id="c1", seq=1, progress=1, total=2, message="half")]


def test_registered_handlers_are_listed() -> None:
    worker = Worker("unit")

    @worker.tool("a")
    async def a(ctx: WorkerContext, args: dict[str, Any]) -> str:
        return ""

    @worker.prompt("p")
    async def p(ctx: WorkerContext, args: dict[str, str]) -> list[dict[str, Any]]:
        return []

    assert worker.names == {"tools": ["a"], "resources": [], "prompts": ["p"], "completions": []}


async def test_start_task_tells_the_edge_once_and_only_when_the_call_may_become_a_task() -> None:
    worker = RecordingWorker()
    plain = context(worker)
    assert await plain.start_task("working") is False
    assert worker.published == []  # a 2025 session or a client without the extension: nothing changes

    tasked = context(worker, tasks=True)
    assert await tasked.start_task("working") is True
    assert await tasked.start_task("again") is True
    assert [type(m).__name__ for m in worker.published] == ["WorkerTaskStart"]
    start = worker.published[0]
    assert isinstance(start, WorkerTaskStart) and start.seq == 1 and start.status_message == "working"
