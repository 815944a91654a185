"""The outbound client against small HTTP/1.1 servers on loopback, each written to misbehave in one
way (stale keep-alive, chunked or close-delimited answers, silence, huge answers, broken framing)."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from skillrelay_common.outbound import (
    BodyTooLarge,
    OutboundClient,
    OutboundError,
    RequestShape,
    TargetCache,
    encode_query,
)
from skillrelay_common.ssrf import TargetRefused

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Upstream"], Awaitable[None]]


class Upstream:
    """Counts connections and keeps every request head it read."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def read_request(self, reader: asyncio.StreamReader) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return False
        self.heads.append(head)
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        self.bodies.append(await reader.readexactly(length) if length else b"")
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        len(body),
        extra,
        body,
    )


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Upstream) -> None:
    while await up.read_request(reader):
        writer.write(ok(up.bodies[-1] or b"{}"))


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Upstream]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> Upstream:
        upstream = Upstream(handler)
        upstream.server = await asyncio.start_server(upstream._serve, "127.0.0.1", 0)
        servers.append(upstream.server)
        return upstream

    yield start
    for server in servers:
        server.close()


@pytest.fixture
async def client() -> AsyncIterator[OutboundClient]:
    outbound = OutboundClient(TargetCache(allow_private=True), max_connections_per_upstream=4)
    yield outbound
    await outbound.aclose()


def post(url: str, headers: dict[str, str] | None = None) -> RequestShape:
    return RequestShape("POST", url, {"Content-Type": "application/json", **(headers or {})})


async def test_calls_share_one_kept_alive_connection(
    serve: Callable[[Handler], Awaitable[Upstream]], client: OutboundClient
) -> None:
    up = await serve(echo)
    shape = post(f"{up.url}/echo?v=1", {"X-Key": "k", "Host": "evil.example.com"})
    for n in range(5):
        answer = await client.send(shape, body=b'{"n":%d}' % n, timeout=5, max_body=1024)
        assert (answer.status, answer.body) == (200, b'{"n":%d}' % n)
        assert answer.header(b"content-type") == b"application/json"
    assert up.connections == 1
    head = up.heads[0].decode()
    assert head.startswith("POST /echo?v=1 HTTP/1.1\r\n")
    assert f"Host: {up.url.removeprefix('http://')}\r\n" in head and "evil" not in head
    assert "X-Key: k\r\n" in head and "Content-Length: 7\r\n" in head


async def test_a_query_is_appended_and_a_get_has_no_body(
    serve: Callable[[Handler], Awaitable[Upstream]], client: OutboundClient
) -> None:
    up = await serve(echo)
    shape = RequestShape("GET", f"{up.url}/find?fixed=1", {})
    await client.send(shape, query=encode_query({"q": "a b&c", "n": "2"}), timeout=5, max_body=1024)
    assert up.heads[0].startswith(b"GET /find?fixed=1&q=a%20b%26c&n=2 HTTP/1.1\r\n")
    assert b"content-length" not in up.heads[0].lower()


async def test_concurrent_calls_stay_within_the_connection_limit(
    serve: Callable[[Handler], Awaitable[Upstream]], client: OutboundClient
) -> None:
    up = await serve(echo)
    shape = post(f"{up.url}/echo")
    answers = await asyncio.gather(
        *(client.send(shape, body=b"[%d]" % n, timeout=5, max_body=1024) for n in range(20))
    )
    assert [a.body for a in answers] == [b"[%d]" % n for n in range(20)]
    assert 1 <= up.connections <= 4


async def test_chunked_and_close_delimited_answers(
    serve: Callable[[Handler], Awaitable[Upstream]], client: OutboundClient
) -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Upstream) -> None:
        while await up.read_request(reader):
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")

    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Upstream) -> None:
        await up.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end")
        await writer.drain()

    first, second = await serve(chunked), await serve(until_close)
    assert (await client.send(post(first.url), body=b"{}", timeout=5, max_body=99)).body == b"abcde"
    assert (await client.send(post(first.url), body=b"{}", timeout=5, max_body=99)).body == b"abcde"
    assert first.connections == 1
    assert (await client.send(post(second.url), body=b"{}", timeout=5, max_body=99)).body == b"to the end"
    assert (await client.send(post(second.url), body=b"{}", timeout=5, max_body=99)).body == b"to the end"
    assert second.connections == 2  # not kept: the answer ended with the connection


async def test_a_stale_kept_alive_connection_is_replaced_once(
    serve: Callable[[Handler], Awaitable[Upstream]], client: OutboundClient
) -> None:
    async def one_answer_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Upstream
    ) -> None:
        # Keep-alive promised, then the second request on the connection is dropped unanswered (the
        # server's idle timeout raced with our request).
        await up.read_request(reader)
        writer.write(ok(b"{}"))
        await up.read_request(reader)

    up = await serve(one_answer_per_connection)
    for _ in range(3):
        answer = await client.send(post(up.url), body=b"{}", timeout=5, max_body=99)
        assert answer.status == 200
    assert up.connections == 3


async def test_a_fresh_connection_that_closes_unanswered_fails(
    serve: Callable[[Handler], Awaitable[Upstream]], client: OutboundClient
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Upstream) -> None:
        await up.read_request(reader)

    up = await serve(hang_up)
    with pytest.raises(OutboundError, match="closed"):
        await client.send(post(up.url), body=b"{}", timeout=5, max_body=99)
    assert up.connections == 1  # a request never answered is not sent twice on fresh connections


async def test_an_answer_over_the_limit_is_refused_and_its_connection_dropped(
    serve: Callable[[Handler], Awaitable[Upstream]], client: OutboundClient
) -> None:
    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Upstream) -> None:
        while await up.read_request(reader):
            writer.write(ok(b"x" * 5000))

    up = await serve(huge)
    for _ in range(2):
        with pytest.raises(BodyTooLarge):
            await client.send(post(up.url), body=b"{}", timeout=5, max_body=4096)
    assert up.connections == 2
    assert client.open_connections == 0


async def test_a_silent_upstream_times_out_and_frees_its_slot(
    serve: Callable[[Handler], Awaitable[Upstream]], client: OutboundClient
) -> None:
    released = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Upstream) -> None:
        await up.read_request(reader)
        await reader.read()  # until we hang up
        released.set()

    up = await serve(silent)
    with pytest.raises(TimeoutError):
        await client.send(post(up.url), body=b"{}", timeout=0.2, max_body=99)
    async with asyncio.timeout(5):
        await released.wait()
    assert client.open_connections == 0


async def test_a_cancelled_call_drops_its_connection(
    serve: Callable[[Handler], Awaitable[Upstream]], client: OutboundClient
) -> None:
    received = asyncio.Event()
    released = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Upstream) -> None:
        await up.read_request(reader)
        received.set()
        await reader.read()
        released.set()

    up = await serve(silent)
    call = asyncio.ensure_future(client.send(post(up.url), body=b"{}", timeout=30, max_body=99))
    async with asyncio.timeout(5):
        await received.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    async with asyncio.timeout(5):
        await released.wait()
    assert client.open_connections == 0


async def test_broken_framing_is_an_error_not_a_hang(
    serve: Callable[[Handler], Awaitable[Upstream]], client: OutboundClient
) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Upstream) -> None:
        await up.read_request(reader)
        writer.write(b"HTTP/1.1 abc nonsense\r\n\r\n")
        await reader.read()

    up = await serve(garbage)
    with pytest.raises(OutboundError, match="not valid HTTP"):
        await client.send(post(up.url), body=b"{}", timeout=5, max_body=99)


def test_header_injection_and_odd_methods_are_refused() -> None:
    with pytest.raises(TargetRefused, match="line break"):
        RequestShape("POST", "http://example.com/", {"X-A": "1\r\nX-Injected: 1"})
    with pytest.raises(TargetRefused, match="not valid"):
        RequestShape("POST", "http://example.com/", {"X A": "1"})
    with pytest.raises(TargetRefused):
        RequestShape("CONNECT", "http://example.com/", {})


async def test_private_targets_are_refused_before_connecting(
    serve: Callable[[Handler], Awaitable[Upstream]],
) -> None:
    up = await serve(echo)
    guarded = OutboundClient(TargetCache(allow_private=False))
    try:
        with pytest.raises(TargetRefused):
            await guarded.send(post(up.url), body=b"{}", timeout=5, max_body=99)
    finally:
        await guarded.aclose()
    assert up.connections == 0


async def test_interim_answers_are_skipped(
    serve: Callable[[Handler], Awaitable[Upstream]], client: OutboundClient
) -> None:
    async def early_hints(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Upstream) -> None:
        while await up.read_request(reader):
            writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
            writer.write(ok(b'{"done":true}'))

    up = await serve(early_hints)
    for _ in range(2):
        answer = await client.send(post(up.url), body=b"{}", timeout=5, max_body=99)
        assert (answer.status, answer.body, answer.header(b"link")) == (200, b'{"done":true}', None)
    assert up.connections == 1


def _self_signed(name: str) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


async def test_tls_checks_the_url_name_while_connecting_to_the_pinned_address(tmp_path: Path) -> None:
    cert, key = _self_signed("localhost")
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    up = Upstream(echo)
    server = await asyncio.start_server(up._serve, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    trusting = OutboundClient(
        TargetCache(allow_private=True), ssl_context=ssl.create_default_context(cadata=cert.decode())
    )
    try:
        shape = post(f"https://localhost:{port}/secure")
        answer = await trusting.send(shape, body=b'{"tls":1}', timeout=5, max_body=99)
        assert (answer.status, answer.body) == (200, b'{"tls":1}')
        assert up.heads[0].startswith(b"POST /secure HTTP/1.1\r\n")
        assert f"Host: localhost:{port}\r\n".encode() in up.heads[0]
        # The same server by another name: the certificate does not match, nothing is sent.
        with pytest.raises(OutboundError, match="TLS"):
            await trusting.send(post(f"https://127.0.0.1:{port}/"), body=b"{}", timeout=5, max_body=99)
        assert len(up.heads) == 1
    finally:
        await trusting.aclose()
        server.close()


async def test_an_event_stream_is_handed_over_as_it_arrives(
    serve: Callable[[Handler], Awaitable[Upstream]], client: OutboundClient
) -> None:
    second_part = asyncio.Event()

    async def events(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Upstream) -> None:
        while await up.read_request(reader):
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            writer.write(b"d\r\ndata: first\n\n\r\n")
            await writer.drain()
            await second_part.wait()
            writer.write(b"e\r\ndata: second\n\n\r\n0\r\n\r\n")

    up = await serve(events)
    seen: list[bytes] = []

    def stream(chunk: bytes) -> None:
        seen.append(chunk)
        second_part.set()  # the first part arrived before the answer was complete

    answer = await client.send(post(up.url), body=b"{}", timeout=5, max_body=1024, stream=stream)
    assert b"".join(seen) == b"data: first\n\ndata: second\n\n"
    assert answer.status == 200 and answer.body == b""
    # With a sink given, an answer that is not an event stream is still collected whole.
    json_up = await serve(echo)
    plain = await client.send(post(json_up.url), body=b"[1]", timeout=5, max_body=1024, stream=stream)
    assert plain.body == b"[1]" and b"".join(seen).count(b"data:") == 2
