"""The services' uvicorn protocol (``LeanHttpToolsProtocol``) on a real server and real sockets:
plain and pipelined HTTP/1.1 requests are answered as uvicorn answers them, and an idle connection
keeps no pipeline deque; a streaming response may be written from outside its request's task
(``stream_writer``), in order with what the task sends, and not once its client stops reading;
a service raises its open-files limit as far as it may."""

from __future__ import annotations

import asyncio
import contextlib
import resource
from collections.abc import AsyncIterator

import pytest
import uvicorn

from skillrelay_common.lean_http import LeanHttpToolsProtocol, _RarePipeline, stream_writer
from skillrelay_common.runtime import raise_open_files_limit, uvicorn_config
from skillrelay_devstack.embedded import free_port


async def echo_path(scope: dict[str, object], receive: object, send: object) -> None:
    if scope["type"] != "http":
        return
    body = str(scope["path"]).encode()
    await send(  # type: ignore[operator]
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})  # type: ignore[operator]


@contextlib.asynccontextmanager
async def _serving(app: object) -> AsyncIterator[tuple[int, uvicorn.Server]]:
    port = free_port()
    config = uvicorn_config(app, "127.0.0.1", port)
    config.lifespan = "off"
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    while not served.started:  # noqa: ASYNC110 (uvicorn offers no start-up event)
        await asyncio.sleep(0.01)
    try:
        yield port, served
    finally:
        served.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, uvicorn.Server]]:
    async with _serving(echo_path) as serving:
        yield serving


async def _read_answers(reader: asyncio.StreamReader, count: int) -> list[bytes]:
    bodies = []
    for _ in range(count):
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.startswith(b"content-length")
        )
        bodies.append(await reader.readexactly(length))
    return bodies


async def test_the_services_serve_with_the_lean_protocol(server: tuple[int, uvicorn.Server]) -> None:
    port, served = server
    assert served.config.http_protocol_class is LeanHttpToolsProtocol
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await _read_answers(reader, 1) == [b"/one"]
    (connection,) = served.server_state.connections
    assert isinstance(connection, LeanHttpToolsProtocol)
    assert isinstance(connection.pipeline, _RarePipeline) and not connection.pipeline
    assert connection.pipeline._queue is None  # idle: no deque kept
    writer.close()


async def test_pipelined_requests_are_answered_in_order(server: tuple[int, uvicorn.Server]) -> None:
    port, _ = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"".join(f"GET /{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for n in range(5)))
    assert await _read_answers(reader, 5) == [f"/{n}".encode() for n in range(5)]
    writer.close()


def test_the_pipeline_keeps_order_and_drops_its_deque_once_empty() -> None:
    pipeline = _RarePipeline()
    pipeline.appendleft("first")
    pipeline.appendleft("second")
    assert len(pipeline) == 2 and pipeline
    assert pipeline.pop() == "first"
    assert pipeline.pop() == "second"
    assert not pipeline and pipeline._queue is None
    with pytest.raises(IndexError):
        pipeline.pop()


def test_a_service_raises_its_open_files_limit_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        assert raise_open_files_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class StreamingApp:
    """Starts a chunked streaming response, sends its first chunk, then hands its writer to the test
    and sends its last chunk once told."""

    def __init__(self) -> None:
        self.writer: asyncio.Future[LeanHttpToolsProtocol | None] = asyncio.get_running_loop().create_future()
        self.finish = asyncio.Event()

    async def __call__(self, scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] != "http":
            return
        start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        await send(start)  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"first;", "more_body": True})  # type: ignore[operator]
        if not self.writer.done():  # the first request's (a pipelined one streams the same)
            self.writer.set_result(stream_writer(scope))
        await self.finish.wait()
        await send({"type": "http.response.body", "body": b"last;", "more_body": True})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"", "more_body": False})  # type: ignore[operator]


async def _chunks(reader: asyncio.StreamReader) -> list[bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head
    chunks = []
    while size := int((await reader.readuntil(b"\r\n"))[:-2], 16):
        chunks.append(await reader.readexactly(size))
        assert await reader.readexactly(2) == b"\r\n"
    return chunks


STREAM_REQUEST = b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"


@contextlib.asynccontextmanager
async def _streaming(
    request: bytes = STREAM_REQUEST,
) -> AsyncIterator[tuple[StreamingApp, asyncio.StreamReader, LeanHttpToolsProtocol]]:
    """A streaming response under way on a real server: the app, the client's reader, the writer."""
    app = StreamingApp()
    async with _serving(app) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        direct = await asyncio.wait_for(app.writer, 10)
        assert direct is not None
        try:
            yield app, reader, direct
        finally:
            app.finish.set()
            writer.close()


async def test_a_streaming_response_is_written_from_outside_its_task_in_order() -> None:
    async with _streaming() as (app, reader, direct):
        assert direct.write_now(b"second;")
        assert direct.write_now(b"third;")
        app.finish.set()
        chunks = await asyncio.wait_for(_chunks(reader), 10)
        assert chunks == [b"first;", b"second;", b"third;", b"last;"]
        assert not direct.write_now(b"too late;")  # the response is complete


async def test_a_client_that_stops_reading_is_not_written_to_and_may_be_dropped() -> None:
    async with _streaming() as (_, reader, direct):
        block = b"x" * 65536
        written = 0
        while direct.write_now(block):  # the client reads nothing: the socket fills, then uvicorn's buffer
            written += 1
            assert written < 10_000, "back-pressure never refused a write"
            await asyncio.sleep(0)
        assert not direct.write_now(b"small")  # refused while paused, however small
        direct.abort()
        with contextlib.suppress(ConnectionError):
            while await reader.read(1 << 20):  # the connection ends (after what the kernel had)
                pass


async def test_no_direct_write_while_a_pipelined_request_waits_behind_the_stream() -> None:
    async with _streaming(STREAM_REQUEST + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n") as (app, reader, direct):
        while not direct.pipeline:  # noqa: ASYNC110 (the second request is parsed from the same bytes)
            await asyncio.sleep(0.01)
        assert not direct.write_now(b"refused;")
        app.finish.set()
        assert await asyncio.wait_for(_chunks(reader), 10) == [b"first;", b"last;"]


def test_without_the_lean_protocol_there_is_no_writer() -> None:
    assert stream_writer({"type": "http", "headers": []}) is None
