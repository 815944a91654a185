"""The auth callout: nats-server asks, on ``$SYS.REQ.USER.AUTH``, whether a connecting client that is
not a configured service may in; we answer with a user JWT that allows only its owner's worker
subjects, or with an error that refuses it (docs/security.md).

A worker connects with user = credential id and password = secret. Anything else (no credentials, a
wrong secret, a deleted credential) is refused. The request is signed by the server's own key, which
we check; the answer is signed by the callout issuer key the server configuration names.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from faststream.message import StreamMessage
from faststream.nats import NatsMessage, NatsRouter

from skillrelay_auth.worker_credentials import WorkerCredentials
from skillrelay_common import nats_jwt, nkey
from skillrelay_common.bus_auth import APP_ACCOUNT
from skillrelay_worker.credential import is_subject_token
from skillrelay_worker.subjects import worker_permissions

CALLOUT_SUBJECT = "$SYS.REQ.USER.AUTH"
_log = structlog.get_logger("skillrelay.auth.bus_callout")


class Refused(Exception):
    """The connection is refused; the message goes to nats-server's log and ours (never a secret)."""


class WorkerCallout:
    def __init__(self, credentials: WorkerCredentials, signer: nkey.KeyPair) -> None:
        self._credentials = credentials
        self._signer = signer

    async def answer(self, request: bytes) -> bytes:
        """The signed authorization response to one signed authorization request."""
        claims = nats_jwt.decode(request.decode(errors="replace"), nkey.SERVER)
        details: dict[str, Any] = claims.get("nats") or {}
        user_nkey = str(details.get("user_nkey") or "")
        server = details.get("server_id") or {}
        server_id = str(server.get("id") or "")
        if claims.get("iss") != server_id or not user_nkey:
            raise nats_jwt.JwtError("an authorization request from another than its server")
        options = details.get("connect_opts") or {}
        client = details.get("client_info") or {}
        started = time.perf_counter()
        try:
            user_jwt = await self._authorize(user_nkey, options)
        except Refused as refused:
            _log.warning(
                "bus.connection.refused",
                reason=str(refused),
                user=_printable(options.get("user")),
                host=client.get("host"),
                server=server.get("name"),
                client_id=client.get("id"),
            )
            return self._response(user_nkey, server_id, error=str(refused))
        _log.info(
            "bus.worker.authorized",
            credential_id=options.get("user"),
            server=server.get("name"),
            client_id=client.get("id"),
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return self._response(user_nkey, server_id, jwt=user_jwt)

    async def _authorize(self, user_nkey: str, options: dict[str, Any]) -> str:
        credential_id = options.get("user")
        secret = options.get("pass")
        if not isinstance(credential_id, str) or not isinstance(secret, str) or not credential_id:
            raise Refused("a worker connects with a worker credential (user and password)")
        if not is_subject_token(credential_id) or len(secret) > 256:
            raise Refused("unknown worker credential or wrong secret")
        stored = await self._credentials.authorize(credential_id, secret)
        if stored is None:
            raise Refused("unknown worker credential or wrong secret")
        publish, subscribe = worker_permissions(stored.owner_id)
        return nats_jwt.user_jwt(
            user_nkey=user_nkey,
            account=APP_ACCOUNT,
            name=stored.id,
            publish=publish,
            subscribe=subscribe,
            signer=self._signer,
        )

    def _response(
        self, user_nkey: str, server_id: str, *, jwt: str | None = None, error: str | None = None
    ) -> bytes:
        return nats_jwt.authorization_response(
            user_nkey=user_nkey, server_id=server_id, signer=self._signer, jwt=jwt, error=error
        ).encode()


def _printable(value: Any) -> str | None:
    return value[:80] if isinstance(value, str) and value.isprintable() else None


def serve_callout(consumers: NatsRouter, callout: WorkerCallout) -> None:
    """Answer the server's authorization requests (queue group: any auth replica may answer). A raw
    subscriber (a signed JWT in, one out) that answers by hand: an unreadable request stays unanswered,
    so the server refuses the connection when its wait ends, as it does for a callout that is down."""

    @consumers.subscriber(
        CALLOUT_SUBJECT,
        queue="auth",
        no_reply=True,
        decoder=_raw_body,
        title=CALLOUT_SUBJECT,
        description="nats-server's authorization requests for connecting workers (auth callout)",
    )
    async def authorize_connection(body: bytes, message: NatsMessage) -> None:
        msg = message.raw_message
        if not msg.reply:
            return
        try:
            answer = await callout.answer(body)
        except nats_jwt.JwtError as exc:
            _log.warning("bus.callout.unreadable", error=str(exc))
            return  # unanswered: the server refuses the connection when its wait ends
        except Exception:
            _log.exception("bus.callout.failed")
            return
        await msg.respond(answer)


async def _raw_body(message: StreamMessage[Any]) -> bytes:
    return bytes(message.body)
