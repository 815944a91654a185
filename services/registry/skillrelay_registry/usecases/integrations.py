"""MCP server integrations: tokens through auth, sessions through the sessions service, and the
snapshot the edge resolves."""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from msgspec import UNSET

from skillrelay_common import ids
from skillrelay_common.schemas.auth import IssueToken, RevokeToken, RotateToken, TokenIssued
from skillrelay_common.schemas.base import NotFound, Ok, Unavailable
from skillrelay_common.schemas.registry import IntegrationChanged, IntegrationSnapshot
from skillrelay_common.schemas.sessions import (
    CloseSession,
    CloseSessions,
    GetSession,
    ListSessions,
    SessionInfo,
    SessionList,
)
from skillrelay_common.subjects import (
    AUTH_TOKEN_ISSUE,
    AUTH_TOKEN_REVOKE,
    AUTH_TOKEN_ROTATE,
    INTEGRATION_CREATED,
    INTEGRATION_DELETED,
    INTEGRATION_UPDATED,
    SESSIONS_CLOSE,
    SESSIONS_CLOSE_ALL,
    SESSIONS_GET,
    SESSIONS_LIST,
)
from skillrelay_registry import convert, schemas, validation
from skillrelay_registry.errors import NotFoundError, ServiceUnavailable
from skillrelay_registry.models import (
    Blueprint,
    Integration,
    OAuthConnection,
    Skillset,
    Source,
)
from skillrelay_registry.pagination import MAX_TAKE, ListQuery, Page, SessionQuery, encode_session_cursor
from skillrelay_registry.repo import Repository
from skillrelay_registry.sources.assembly import with_sources
from skillrelay_registry.sources.headers import SourceHeaderBox
from skillrelay_registry.usecases.base import (
    PendingEvent,
    UseCaseBase,
    own_snapshot,
    owned,
    owned_fetch,
    reply_reason,
    session_out,
)

_log = structlog.get_logger("skillrelay.registry")


class IntegrationUseCases(UseCaseBase):
    # -- MCP server integrations -----------------------------------------------------------------

    async def _check_references(
        self,
        repo: Repository,
        owner_id: str,
        *,
        skillset_id: str | None = None,
        blueprint_id: str | None = None,
        connection_id: str | None = None,
    ) -> None:
        if skillset_id is not None:
            await owned(repo, Skillset, owner_id, skillset_id, "skillset")
        if blueprint_id is not None:
            await owned(repo, Blueprint, owner_id, blueprint_id, "blueprint")
        if connection_id is not None:
            await owned(repo, OAuthConnection, owner_id, connection_id, "OAuth connection")

    async def create_integration(
        self, owner_id: str, data: schemas.IntegrationCreate
    ) -> schemas.IntegrationCreated:
        """The row is committed first (auth may look the integration up while minting), then auth mints
        the token; if auth cannot, the row is removed again and the call fails with 503."""
        validation.require_name(data.name)
        now = self._clock()
        row = Integration(
            id=ids.new_id(ids.MCP_SERVER),
            owner_id=owner_id,
            name=data.name,
            description=data.description,
            skillset_id=data.skillset_id,
            blueprint_id=data.blueprint_id,
            oauth_connection_id=data.o_auth_connection_id,
            oauth_generation=0,
            session_mode=data.session_mode,
            max_sessions=data.max_sessions,
            session_idle_minutes=data.session_idle_minutes,
            meta=data.meta,
            created_at=now,
            updated_at=now,
        )
        async with self._unit() as repo:
            await self._check_references(
                repo,
                owner_id,
                skillset_id=data.skillset_id,
                blueprint_id=data.blueprint_id,
                connection_id=data.o_auth_connection_id,
            )
            repo.add(row)
        reply = await self._bus.request(AUTH_TOKEN_ISSUE, IssueToken(integration_id=row.id))
        if not isinstance(reply, TokenIssued):
            await self._undo_create(row.id, reply)
            raise ServiceUnavailable(f"the auth service could not issue a token: {reply_reason(reply)}")
        await self._publish(
            [
                PendingEvent(
                    INTEGRATION_CREATED,
                    IntegrationChanged(
                        integration_id=row.id,
                        owner_id=owner_id,
                        change="created",
                        skillset_id=row.skillset_id,
                    ),
                    INTEGRATION_CREATED.subject,
                )
            ]
        )
        return schemas.IntegrationCreated(
            id=row.id, access_token=reply.token, endpoint=self._endpoint(row.id)
        )

    async def _undo_create(self, integration_id: str, reply: object) -> None:
        _log.warning(
            "registry.integration.create_undone", integration_id=integration_id, reason=reply_reason(reply)
        )
        if isinstance(reply, Unavailable):
            # Auth may have minted the token and only the answer got lost: ask it to forget the token.
            await self._bus.request(AUTH_TOKEN_REVOKE, RevokeToken(integration_id=integration_id))
        async with self._unit() as repo:
            row = await repo.integration(integration_id)
            if row is not None:
                await repo.delete(row)

    async def list_integrations(self, owner_id: str, query: ListQuery) -> Page[schemas.IntegrationOut]:
        return await self._page(owned_fetch(Integration, owner_id), query, self._integration_out)

    def stream_integrations(self, owner_id: str, query: ListQuery) -> AsyncIterator[schemas.IntegrationOut]:
        return self._stream(owned_fetch(Integration, owner_id), query, self._integration_out)

    def _integration_out(self, row: Integration) -> schemas.IntegrationOut:
        return convert.integration_out(row, self._settings.http.edge_public_url)

    async def get_integration(self, owner_id: str, integration_id: str) -> schemas.IntegrationOut:
        async with self._unit() as repo:
            return self._integration_out(
                await owned(repo, Integration, owner_id, integration_id, "integration")
            )

    async def update_integration(
        self, owner_id: str, integration_id: str, data: schemas.IntegrationUpdate
    ) -> schemas.Created:
        changed: list[str] = []
        async with self._unit() as repo:
            row = await owned(repo, Integration, owner_id, integration_id, "integration", lock=True)
            if data.name is not UNSET and data.name != row.name:
                row.name = validation.require_name(data.name)
                changed.append("name")
            if data.description is not UNSET and data.description != row.description:
                row.description = data.description
                changed.append("description")
            if data.skillset_id is not UNSET and data.skillset_id != row.skillset_id:
                await self._check_references(repo, owner_id, skillset_id=data.skillset_id)
                row.skillset_id = data.skillset_id
                changed.append("skillsetId")
            if data.blueprint_id is not UNSET and data.blueprint_id != row.blueprint_id:
                await self._check_references(repo, owner_id, blueprint_id=data.blueprint_id)
                row.blueprint_id = data.blueprint_id
                changed.append("blueprintId")
            if (
                data.o_auth_connection_id is not UNSET
                and data.o_auth_connection_id != row.oauth_connection_id
            ):
                await self._check_references(repo, owner_id, connection_id=data.o_auth_connection_id)
                row.oauth_connection_id = data.o_auth_connection_id
                # JWTs carry the generation: every one issued under the old connection stops verifying.
                row.oauth_generation += 1
                changed.append("oAuthConnectionId")
            if data.session_mode is not UNSET and data.session_mode != row.session_mode:
                row.session_mode = data.session_mode
                changed.append("sessionMode")
            if data.max_sessions is not UNSET and data.max_sessions != row.max_sessions:
                row.max_sessions = data.max_sessions
                changed.append("maxSessions")
            if (
                data.session_idle_minutes is not UNSET
                and data.session_idle_minutes != row.session_idle_minutes
            ):
                # New sessions take it; a live one keeps the timeout it was opened with.
                row.session_idle_minutes = data.session_idle_minutes
                changed.append("sessionIdleMinutes")
            if data.meta is not UNSET and data.meta != row.meta:
                row.meta = data.meta
                changed.append("meta")
            if changed:
                row.updated_at = self._clock()
            skillset_id = row.skillset_id
        if changed:
            await self._publish(
                [
                    PendingEvent(
                        INTEGRATION_UPDATED,
                        IntegrationChanged(
                            integration_id=integration_id,
                            owner_id=owner_id,
                            change="updated",
                            skillset_id=skillset_id,
                            fields=changed,
                        ),
                        INTEGRATION_UPDATED.subject,
                    )
                ]
            )
        return schemas.Created(id=integration_id)

    async def rotate_integration_token(self, owner_id: str, integration_id: str) -> schemas.TokenRotated:
        """Answers once auth confirmed that no live edge replica accepts the old token."""
        await self.get_integration(owner_id, integration_id)
        rotated = await self._bus.request(AUTH_TOKEN_ROTATE, RotateToken(integration_id=integration_id))
        reply: object = rotated
        if isinstance(rotated, NotFound):
            # Auth has no token for it (e.g. its store was reset): a first token is the rotation.
            issued = await self._bus.request(AUTH_TOKEN_ISSUE, IssueToken(integration_id=integration_id))
            reply = issued
        if not isinstance(reply, TokenIssued):
            raise ServiceUnavailable(f"the auth service could not rotate the token: {reply_reason(reply)}")
        return schemas.TokenRotated(id=integration_id, access_token=reply.token)

    async def delete_integration(self, owner_id: str, integration_id: str) -> schemas.Created:
        """Revoke the token first (auth answers once every edge replica dropped it), then the row, then
        end its sessions. If auth is unreachable nothing changes (503)."""
        integration = await self.get_integration(owner_id, integration_id)
        reply = await self._bus.request(AUTH_TOKEN_REVOKE, RevokeToken(integration_id=integration_id))
        if not isinstance(reply, Ok | NotFound):
            raise ServiceUnavailable(f"the auth service could not revoke the token: {reply_reason(reply)}")
        async with self._unit() as repo:
            row = await repo.owned(Integration, owner_id, integration_id)
            if row is not None:
                await repo.delete(row)
        closed = await self._bus.request(
            SESSIONS_CLOSE_ALL, CloseSessions(integration_id=integration_id, reason="integration deleted")
        )
        if isinstance(closed, Unavailable):
            # The edge refuses sessions of a deleted integration anyway; they expire on their own.
            _log.warning("registry.integration.sessions_not_closed", integration_id=integration_id)
        await self._publish(
            [
                PendingEvent(
                    INTEGRATION_DELETED,
                    IntegrationChanged(
                        integration_id=integration_id,
                        owner_id=owner_id,
                        change="deleted",
                        skillset_id=integration.skillset_id,
                    ),
                    INTEGRATION_DELETED.subject,
                )
            ]
        )
        return schemas.Created(id=integration_id)

    async def list_integration_sessions(
        self, owner_id: str, integration_id: str, query: SessionQuery | None = None
    ) -> schemas.SessionListOut:
        """One page of live sessions, ``cursor`` set when another follows (like every other list);
        without a query, the newest ``MAX_TAKE``."""
        await self.get_integration(owner_id, integration_id)
        query = query or SessionQuery(take=MAX_TAKE)
        request = ListSessions(
            integration_id=integration_id, take=query.take, order=query.order, after=query.after
        )
        reply = await self._bus.request(SESSIONS_LIST, request)
        if not isinstance(reply, SessionList):
            raise ServiceUnavailable(f"the sessions service did not answer: {reply_reason(reply)}")
        return schemas.SessionListOut(
            items=[session_out(info) for info in reply.sessions],
            cursor=encode_session_cursor(reply.next) if reply.next is not None else None,
        )

    async def close_integration_session(
        self, owner_id: str, integration_id: str, session_id: str
    ) -> schemas.Created:
        await self.get_integration(owner_id, integration_id)
        found = await self._bus.request(SESSIONS_GET, GetSession(session_id=session_id))
        if isinstance(found, Unavailable):
            raise ServiceUnavailable(f"the sessions service did not answer: {found.message}")
        if not isinstance(found, SessionInfo) or found.integration_id != integration_id:
            raise NotFoundError("session")
        closed = await self._bus.request(
            SESSIONS_CLOSE, CloseSession(session_id=session_id, reason="deleted")
        )
        if isinstance(closed, Unavailable):
            raise ServiceUnavailable(f"the sessions service did not answer: {closed.message}")
        if isinstance(closed, NotFound):
            raise NotFoundError("session")
        return schemas.Created(id=session_id)

    async def resolve_integration(self, integration_id: str) -> IntegrationSnapshot | None:
        """For the edge and auth over NATS: the integration with its whole skillset, read in one
        snapshot so the revision matches the contents."""
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            repo = Repository(session)
            row = await repo.integration(integration_id)
            if row is None:
                return None
            skillset = await repo.skillset(row.skillset_id)
            if skillset is None:
                return None
            return IntegrationSnapshot(
                integration=convert.integration_info(row),
                skillset=with_sources(
                    await own_snapshot(repo, skillset),
                    await repo.children(Source, skillset.id),
                    SourceHeaderBox(self._settings.secret_key).headers_of,
                ),
            )
