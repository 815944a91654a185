"""The lean NATS connection of the worker path against a real nats-server (and nats-py beside it)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from skillrelay_devstack.embedded import free_port, nats_server_binary, wait_for_port
from skillrelay_devstack.testing import until
from skillrelay_worker.nats_lane import NO_RESPONDERS, LaneMessage, LaneUnavailable, NatsLane, parse_servers


@pytest.fixture
async def lane(nats_url: str) -> AsyncIterator[NatsLane]:
    connection = await NatsLane.connect(nats_url, "test-lane")
    yield connection
    await connection.close()


class Inbox:
    """Collects delivered messages; ``wait(n)`` until n have arrived."""

    def __init__(self) -> None:
        self.messages: list[LaneMessage] = []
        self._changed = asyncio.Event()

    def __call__(self, msg: LaneMessage) -> None:
        self.messages.append(msg)
        self._changed.set()

    async def wait(self, count: int, timeout: float = 5.0) -> list[LaneMessage]:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.messages


@pytest.fixture
def own_server(tmp_path: Path) -> tuple[Path, int]:
    """Where a nats-server of the test's own reads its config (the test writes it) and listens."""
    return tmp_path / "server.conf", free_port()


def _start(config: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [nats_server_binary(), "-c", str(config), "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port("127.0.0.1", port, 15, process)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait(5)


def test_server_urls_carry_credentials_and_scheme() -> None:
    first, second, third = parse_servers("nats://alice:s%40cret@a:4223, tls://tok@b,c:5000")
    assert (first.host, first.port, first.user, first.password, first.tls) == (
        "a",
        4223,
        "alice",
        "s@cret",
        False,
    )
    assert (second.host, second.port, second.token, second.tls) == ("b", 4222, "tok", True)
    assert (third.host, third.port, third.token, third.user) == ("c", 5000, None, None)
    with pytest.raises(ValueError, match="scheme"):
        parse_servers("http://a:4222")
    with pytest.raises(ValueError, match="no NATS server"):
        parse_servers(" , ")


async def test_publish_and_subscribe_with_reply_and_headers(lane: NatsLane) -> None:
    inbox = Inbox()
    lane.subscribe("lane.t1.*", inbox)
    await lane.flush()
    lane.publish("lane.t1.a", b"plain")
    lane.publish("lane.t1.b", b"with reply", reply="lane.back.1")
    lane.publish("lane.t1.c", b"", headers={"X-One": "1", "Skillrelay-Correlation-Id": "abc"})
    first, second, third = await inbox.wait(3)
    assert (first.subject, first.reply, first.data, first.headers, first.status) == (
        "lane.t1.a",
        "",
        b"plain",
        None,
        None,
    )
    assert (second.subject, second.reply, second.data) == ("lane.t1.b", "lane.back.1", b"with reply")
    assert third.data == b""
    assert third.headers == {"X-One": "1", "Skillrelay-Correlation-Id": "abc"}


async def test_no_responders_status_reaches_the_reply_subject(lane: NatsLane) -> None:
    inbox = Inbox()
    lane.subscribe("lane.t2.reply", inbox)
    await lane.flush()
    lane.publish("lane.t2.nobody.listens", b"call", reply="lane.t2.reply")
    (status,) = await inbox.wait(1)
    assert status.status == NO_RESPONDERS == "503"
    assert status.data == b""


async def test_queue_group_delivers_each_message_once(nats_url: str, lane: NatsLane) -> None:
    other = await NatsLane.connect(nats_url, "test-lane-2")
    try:
        ours, theirs = Inbox(), Inbox()
        lane.subscribe("lane.t3", ours, queue="group")
        other.subscribe("lane.t3", theirs, queue="group")
        await lane.flush()
        await other.flush()
        for number in range(40):
            lane.publish("lane.t3", str(number).encode())
        await until(lambda: len(ours.messages) + len(theirs.messages) >= 40)
        await asyncio.sleep(0.1)
        received = sorted(int(m.data) for m in ours.messages + theirs.messages)
        assert received == list(range(40))
        assert ours.messages and theirs.messages  # both members took some
    finally:
        await other.close()


async def test_speaks_with_nats_py_both_ways(nats_url: str, lane: NatsLane) -> None:
    nc = await nats.connect(nats_url)
    try:
        got: asyncio.Queue[nats.aio.msg.Msg] = asyncio.Queue()

        async def on_msg(msg: nats.aio.msg.Msg) -> None:
            await got.put(msg)

        await nc.subscribe("lane.t4.to-py", cb=on_msg)
        await nc.flush()
        lane.publish("lane.t4.to-py", b"hi py", reply="lane.t4.to-lane", headers={"K": "v"})
        msg = await asyncio.wait_for(got.get(), 5)
        assert (msg.data, msg.reply, msg.headers) == (b"hi py", "lane.t4.to-lane", {"K": "v"})

        inbox = Inbox()
        lane.subscribe("lane.t4.to-lane", inbox)
        await lane.flush()
        await nc.publish(msg.reply, b"hi lane", headers={"Answer": "42"})
        (answer,) = await inbox.wait(1)
        assert (answer.data, answer.headers) == (b"hi lane", {"Answer": "42"})
    finally:
        await nc.close()


async def test_large_and_many_messages_arrive_whole_and_in_order(lane: NatsLane) -> None:
    inbox = Inbox()
    lane.subscribe("lane.t5", inbox)
    await lane.flush()
    big = bytes(range(256)) * 2000  # 512 KB: arrives in many reads
    lane.publish("lane.t5", big, headers={"Part": "big"})
    for number in range(500):
        lane.publish("lane.t5", b"small %d" % number)
    messages = await inbox.wait(501)
    assert messages[0].data == big and messages[0].headers == {"Part": "big"}
    assert [m.data for m in messages[1:]] == [b"small %d" % n for n in range(500)]


async def test_unsubscribe_stops_delivery(lane: NatsLane) -> None:
    inbox = Inbox()
    sid = lane.subscribe("lane.t6", inbox)
    await lane.flush()
    lane.publish("lane.t6", b"one")
    await inbox.wait(1)
    lane.unsubscribe(sid)
    lane.publish("lane.t6", b"two")
    await lane.flush()
    await asyncio.sleep(0.1)
    assert [m.data for m in inbox.messages] == [b"one"]


async def test_oversized_payload_and_closed_lane_are_refused(nats_url: str) -> None:
    lane = await NatsLane.connect(nats_url, "test-lane-limits")
    with pytest.raises(LaneUnavailable, match="exceeds"):
        lane.publish("lane.t7", b"x" * (2 * 1024 * 1024))
    await lane.close()
    with pytest.raises(LaneUnavailable, match="closed"):
        lane.publish("lane.t7", b"after close")


async def test_malformed_subjects_and_headers_are_refused(lane: NatsLane) -> None:
    with pytest.raises(ValueError, match="subject"):
        lane.publish("two words", b"")
    with pytest.raises(ValueError, match="subject"):
        lane.publish("ok", b"", reply="bad\r\nPUB x 0")
    with pytest.raises(ValueError, match="line break"):
        lane.publish("ok", b"", headers={"X": "a\r\nInjected: 1"})
    with pytest.raises(ValueError, match="line break"):
        lane.publish("ok", b"", headers={"X": "a\nb"})


async def test_no_server_is_a_clear_error() -> None:
    with pytest.raises(LaneUnavailable, match="cannot connect"):
        await NatsLane.connect(f"nats://127.0.0.1:{free_port()}", "test-lane-nowhere")


async def test_reconnects_and_subscribes_again_after_a_server_restart(own_server: tuple[Path, int]) -> None:
    config, port = own_server
    config.write_text("")
    server = _start(config, port)
    lane = await NatsLane.connect(f"nats://127.0.0.1:{port}", "test-lane-restart", reconnect_wait=0.05)
    try:
        inbox = Inbox()
        lane.subscribe("lane.t8", inbox)
        lane.publish("lane.t8", b"before")
        await inbox.wait(1)
        _stop(server)
        await until(lambda: not lane.is_connected)
        lane.publish("lane.t8", b"while down")  # waits for the next connection
        with pytest.raises(LaneUnavailable, match="buffer full"):
            lane.publish("lane.t8", b"x" * (3 * 1024 * 1024))
        server = _start(config, port)
        await until(lambda: lane.is_connected, 10)
        lane.publish("lane.t8", b"after")
        await inbox.wait(3)
        assert [m.data for m in inbox.messages] == [b"before", b"while down", b"after"]
        assert lane.reconnects == 1
    finally:
        await lane.close()
        _stop(server)


async def test_token_and_user_password_authentication(own_server: tuple[Path, int]) -> None:
    config, port = own_server
    config.write_text('authorization { users = [ { user: "alice", password: "s3cret" } ] }\n')
    server = _start(config, port)
    try:
        lane = await NatsLane.connect(f"nats://alice:s3cret@127.0.0.1:{port}", "test-lane-auth")
        inbox = Inbox()
        lane.subscribe("lane.t9", inbox)
        lane.publish("lane.t9", b"authorized")
        await inbox.wait(1)
        await lane.close()
        with pytest.raises(LaneUnavailable, match="Authorization Violation"):
            await NatsLane.connect(f"nats://alice:wrong@127.0.0.1:{port}", "test-lane-auth")
    finally:
        _stop(server)
    config.write_text('authorization { token: "t0ken" }\n')
    server = _start(config, port)
    try:
        lane = await NatsLane.connect(f"nats://t0ken@127.0.0.1:{port}", "test-lane-token")
        await lane.flush()
        await lane.close()
    finally:
        _stop(server)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "skillrelay-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


async def test_tls_when_the_server_requires_it(
    own_server: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, port = own_server
    cert_file, key_file = _self_signed(config.parent)
    config.write_text(f'tls {{ cert_file: "{cert_file}"\n key_file: "{key_file}" }}\n')
    server = _start(config, port)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # trust the test's own certificate
    try:
        for url in (f"tls://127.0.0.1:{port}", f"nats://127.0.0.1:{port}"):  # asked for, or required
            lane = await NatsLane.connect(url, "test-lane-tls")
            inbox = Inbox()
            lane.subscribe("lane.t10", inbox)
            lane.publish("lane.t10", b"encrypted")
            (msg,) = await inbox.wait(1)
            assert msg.data == b"encrypted"
            await lane.close()
    finally:
        _stop(server)


async def test_a_server_that_stops_answering_pings_is_left(tmp_path: Path) -> None:
    """A connection that is open but dead (no PONG) is dropped and a new one made."""
    connections: list[asyncio.StreamWriter] = []

    async def silent_after_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        writer.write(b'INFO {"server_id":"fake","max_payload":1048576}\r\n')
        await writer.drain()
        await reader.readline()  # CONNECT
        await reader.readline()  # PING
        writer.write(b"PONG\r\n")
        await writer.drain()
        await reader.read()  # then: silence

    server = await asyncio.start_server(silent_after_handshake, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    lane = await NatsLane.connect(
        f"nats://127.0.0.1:{port}", "test-lane-stale", ping_interval=0.05, reconnect_wait=0.01
    )
    try:
        await until(lambda: lane.reconnects >= 1)
        assert len(connections) >= 2
    finally:
        await lane.close()
        server.close()
        for writer in connections:
            writer.close()
