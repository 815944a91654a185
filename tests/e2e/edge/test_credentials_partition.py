"""Fail closed under a network partition: an edge replica whose NATS link goes silent (TCP stays up, no
bytes flow) stops trusting its cache, so a rotation that returns while it is cut off cannot be undone by
it; once the link heals it resynchronises and accepts only the new token."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from skillrelay_common.lifecycle import ServiceResources
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.auth import IssueToken, RotateToken, TokenIssued
from skillrelay_common.schemas.registry import IntegrationInfo
from skillrelay_common.settings import NatsSettings, Settings
from skillrelay_common.subjects import AUTH_TOKEN_ISSUE, AUTH_TOKEN_ROTATE
from skillrelay_edge.access.credentials import AuthFailure, CredentialVerifier, Principal

INTEGRATION = IntegrationInfo(id="mcpserver_partition", owner_id="u", name="p", skillset_id="s")


class SilentLink:
    """A TCP proxy to NATS that can stop moving bytes without closing anything (a silent partition)."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 4222
        # The bus refuses strangers: the proxied URL carries the service credentials of ``target``.
        self._userinfo = parts.netloc.rpartition("@")[0]
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        userinfo = f"{self._userinfo}@" if self._userinfo else ""
        return f"nats://{userinfo}127.0.0.1:{port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self._host, self._port)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await source.read(65536):
                await self.flowing.wait()
                sink.write(data)
                await sink.drain()
        sink.close()

    async def stop(self) -> None:
        self.flowing.set()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def test_a_silently_partitioned_replica_never_accepts_the_rotated_token(
    nats_url: str, auth_service: ServiceResources, bus: Bus
) -> None:
    link = SilentLink(nats_url)
    edge_url = await link.start()
    edge_bus = await Bus.connect(edge_url, "edge", instance_id="edge-partitioned")
    verifier = CredentialVerifier(edge_bus, Settings(nats=NatsSettings(url=edge_url)))
    verifier.register(edge_bus)
    await edge_bus.start()
    await verifier.start()
    try:
        issued = await bus.request(AUTH_TOKEN_ISSUE, IssueToken(integration_id=INTEGRATION.id))
        assert isinstance(issued, TokenIssued)
        assert isinstance(await verifier.authenticate(INTEGRATION, None, issued.token), Principal)

        link.flowing.clear()  # the partition: nothing moves, nothing is closed
        rotated = await bus.request(AUTH_TOKEN_ROTATE, RotateToken(integration_id=INTEGRATION.id), timeout=10)
        assert isinstance(rotated, TokenIssued)
        # Rotate has returned (after waiting out the silent replica). The old token is not accepted.
        during = await verifier.authenticate(INTEGRATION, None, issued.token)
        assert isinstance(during, AuthFailure) and during.status == 503

        link.flowing.set()  # healed: the replica resynchronises
        old: Principal | AuthFailure = during
        for _ in range(100):
            old = await verifier.authenticate(INTEGRATION, None, issued.token)
            if isinstance(old, AuthFailure) and old.status == 401:
                break
            assert not isinstance(old, Principal)
            await asyncio.sleep(0.05)
        assert isinstance(old, AuthFailure) and old.status == 401
        new = await verifier.authenticate(INTEGRATION, None, rotated.token)
        assert isinstance(new, Principal) and new.token_version == 2
    finally:
        await verifier.stop()
        link.flowing.set()
        await edge_bus.close()
        await link.stop()
