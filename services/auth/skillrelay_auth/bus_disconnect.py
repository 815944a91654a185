"""Disconnecting the workers of a rotated or deleted credential, through the system account.

nats-server has no list of "connections of this credential" we could revoke at once, so: ask every
server (``$SYS.REQ.SERVER.PING.CONNZ``, filtered by user = credential id) which connections use it,
then ``$SYS.REQ.SERVER.<id>.KICK`` each. Stateless, so it works with any number of auth replicas and
NATS nodes. A connection whose callout answer was on its way while we looked is caught by a second
sweep a little later (the server waits at most its authorization timeout for an answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import nats
import nats.errors
import structlog
from nats.aio.client import Client as NATS

from skillrelay_common.bus_auth import APP_ACCOUNT

_log = structlog.get_logger("skillrelay.auth.bus_disconnect")

CONNZ_SUBJECT = "$SYS.REQ.SERVER.PING.CONNZ"
KICK_SUBJECT = "$SYS.REQ.SERVER.{server_id}.KICK"
# Servers answer a ping each; we stop listening this long after the last answer (or at the limit).
_QUIET_AFTER_REPLY = 0.05
_FIRST_REPLY_LIMIT = 1.0
_LATE_SWEEP_AFTER = 2.5
_MAX_SWEEPS = 5


class SystemAccountDisconnector:
    def __init__(self, nc: NATS) -> None:
        self._nc = nc
        self._late: set[asyncio.Task[None]] = set()

    @classmethod
    async def connect(cls, system_url: str) -> SystemAccountDisconnector:
        servers = [part.strip() for part in system_url.split(",") if part.strip()]
        nc = await nats.connect(servers=servers, name="auth-system", max_reconnect_attempts=-1)
        return cls(nc)

    async def close(self) -> None:
        for task in self._late:
            task.cancel()
        with contextlib.suppress(Exception):
            await self._nc.close()

    async def disconnect(self, credential_id: str) -> int:
        kicked = await self._sweep(credential_id)
        task = asyncio.create_task(self._late_sweep(credential_id))
        self._late.add(task)
        task.add_done_callback(self._late.discard)
        return kicked

    async def _late_sweep(self, credential_id: str) -> None:
        await asyncio.sleep(_LATE_SWEEP_AFTER)
        with contextlib.suppress(nats.errors.Error):
            if kicked := await self._sweep(credential_id):
                _log.info("bus.worker.disconnected_late", credential_id=credential_id, connections=kicked)

    async def _sweep(self, credential_id: str) -> int:
        total = 0
        for _ in range(_MAX_SWEEPS):
            found = await self._connections(credential_id)
            if not found:
                break
            for server_id, client_id in found:
                with contextlib.suppress(nats.errors.Error):
                    await self._nc.request(
                        KICK_SUBJECT.format(server_id=server_id),
                        json.dumps({"cid": client_id}).encode(),
                        timeout=2.0,
                    )
                    total += 1
        return total

    async def _connections(self, credential_id: str) -> list[tuple[str, int]]:
        """(server id, client id) of every open connection authorised with this credential."""
        inbox = self._nc.new_inbox()
        answers: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_answer(msg: Any) -> None:
            answers.put_nowait(msg.data)

        subscription = await self._nc.subscribe(inbox, cb=on_answer)
        query = {"auth": True, "user": credential_id, "acc": APP_ACCOUNT, "limit": 1024}
        found: list[tuple[str, int]] = []
        try:
            await self._nc.publish(CONNZ_SUBJECT, json.dumps(query).encode(), reply=inbox)
            wait = _FIRST_REPLY_LIMIT
            while True:
                try:
                    data = await asyncio.wait_for(answers.get(), wait)
                except TimeoutError:
                    break
                wait = _QUIET_AFTER_REPLY
                found += _parse_connz(data, credential_id)
        finally:
            await subscription.unsubscribe()
        return found


def _parse_connz(data: bytes, credential_id: str) -> list[tuple[str, int]]:
    try:
        answer = json.loads(data)
        server_id = answer["server"]["id"]
        connections = (answer.get("data") or {}).get("connections") or []
        return [
            (str(server_id), int(conn["cid"]))
            for conn in connections
            if conn.get("authorized_user") == credential_id
        ]
    except (ValueError, KeyError, TypeError):
        _log.warning("bus.connz.unreadable")
        return []
