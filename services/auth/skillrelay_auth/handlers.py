"""NATS entry points of the auth service (FastStream subscribers, ``skillrelay_common.broker``):
decode, call the service, encode. Nothing else."""

from __future__ import annotations

from typing import Any

from skillrelay_auth.signing import SigningKeys
from skillrelay_auth.static_tokens import StaticTokens, TokenExists
from skillrelay_common.broker import Answers
from skillrelay_common.schemas.auth import (
    GetJwks,
    IssueToken,
    Jwks,
    RevokeToken,
    RotateToken,
    TokenIssued,
    TokenValid,
    VerifyToken,
)
from skillrelay_common.schemas.base import Conflict, Denied, Invalid, NotFound, Ok
from skillrelay_common.subjects import (
    AUTH_JWKS_GET,
    AUTH_PING,
    AUTH_TOKEN_ISSUE,
    AUTH_TOKEN_REVOKE,
    AUTH_TOKEN_ROTATE,
    AUTH_TOKEN_VERIFY,
    AUTH_WORKER_CREDENTIAL_CREATE,
    AUTH_WORKER_CREDENTIAL_DELETE,
    AUTH_WORKER_CREDENTIAL_GET,
    AUTH_WORKER_CREDENTIAL_LIST,
    AUTH_WORKER_CREDENTIAL_ROTATE,
    Endpoint,
)

# Every endpoint this service answers (the contract test checks each subject has exactly one owner).
SERVED_ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (
    AUTH_PING,
    AUTH_TOKEN_ISSUE,
    AUTH_TOKEN_VERIFY,
    AUTH_TOKEN_ROTATE,
    AUTH_TOKEN_REVOKE,
    AUTH_JWKS_GET,
    AUTH_WORKER_CREDENTIAL_CREATE,
    AUTH_WORKER_CREDENTIAL_LIST,
    AUTH_WORKER_CREDENTIAL_GET,
    AUTH_WORKER_CREDENTIAL_ROTATE,
    AUTH_WORKER_CREDENTIAL_DELETE,
)

_MAX_ID = 80


def register_static_token_handlers(answers: Answers, tokens: StaticTokens) -> None:
    async def issue(request: IssueToken) -> TokenIssued | Conflict | Invalid:
        if not request.integration_id or len(request.integration_id) > _MAX_ID:
            return Invalid(message="integration_id is empty or too long")
        try:
            issued = await tokens.issue(request.integration_id)
        except TokenExists:
            return Conflict(message="the integration already has a token")
        return TokenIssued(integration_id=issued.integration_id, token=issued.token, version=issued.version)

    async def verify(request: VerifyToken) -> TokenValid | Denied:
        version = await tokens.verify(request.integration_id, request.token)
        if version is None:
            return Denied(reason="unknown or revoked static token")
        return TokenValid(integration_id=request.integration_id, version=version)

    async def rotate(request: RotateToken) -> TokenIssued | NotFound:
        issued = await tokens.rotate(request.integration_id)
        if issued is None:
            return NotFound(what="token")
        return TokenIssued(integration_id=issued.integration_id, token=issued.token, version=issued.version)

    async def revoke(request: RevokeToken) -> Ok | NotFound:
        return Ok() if await tokens.revoke(request.integration_id) else NotFound(what="token")

    answers.serve(AUTH_TOKEN_ISSUE, issue)
    answers.serve(AUTH_TOKEN_VERIFY, verify)
    answers.serve(AUTH_TOKEN_ROTATE, rotate)
    answers.serve(AUTH_TOKEN_REVOKE, revoke)


def register_jwks_handler(answers: Answers, keys: SigningKeys) -> None:
    async def jwks(_: GetJwks) -> Jwks:
        return Jwks(keys=await keys.jwks())

    answers.serve(AUTH_JWKS_GET, jwks)
