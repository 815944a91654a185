"""The registry's use cases: users, blueprints, skillsets with their abilities, resources and prompts,
OAuth connections and MCP server integrations. No web framework here; the REST API, the dashboard and
the NATS handlers all call ``RegistryService``.

Every owner-facing method takes ``owner_id`` first and treats another owner's record exactly like a
missing one. Changes are committed first, then their events are published (a subscriber that reloads
on an event must see the change).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import msgspec
import structlog
from msgspec import UNSET
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from skillrelay_common import ids
from skillrelay_common.crypto import SecretBox
from skillrelay_common.schemas.auth import IssueToken, RevokeToken, RotateToken, TokenIssued
from skillrelay_common.schemas.base import Message, NotFound, Ok, Unavailable
from skillrelay_common.schemas.registry import (
    ChangeKind,
    IntegrationChanged,
    IntegrationSnapshot,
    OAuthConnectionSecret,
    OwnedRecordChanged,
    SkillsetChanged,
)
from skillrelay_common.schemas.sessions import (
    CloseSession,
    CloseSessions,
    GetSession,
    ListSessions,
    SessionInfo,
    SessionList,
)
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import (
    AUTH_TOKEN_ISSUE,
    AUTH_TOKEN_REVOKE,
    AUTH_TOKEN_ROTATE,
    INTEGRATION_CREATED,
    INTEGRATION_DELETED,
    INTEGRATION_UPDATED,
    OWNED_RECORD_CHANGED,
    SESSIONS_CLOSE,
    SESSIONS_CLOSE_ALL,
    SESSIONS_GET,
    SESSIONS_LIST,
    SKILLSET_CHANGED,
    Endpoint,
    Event,
)
from skillrelay_registry import convert, schemas, validation
from skillrelay_registry.errors import (
    ConflictError,
    InvalidInput,
    NotFoundError,
    ServiceUnavailable,
    Unauthorized,
)
from skillrelay_registry.models import (
    Ability,
    Base,
    Blueprint,
    Integration,
    OAuthConnection,
    Prompt,
    Resource,
    Skillset,
    User,
)
from skillrelay_registry.pagination import STREAM_BATCH, ListQuery, Page, assemble_page, position_of
from skillrelay_registry.repo import Repository

API_KEY_PREFIX = "sr_key"
_FOREIGN_KEY_VIOLATION = "23503"
OAUTH_SECRET_PURPOSE = "oauth-client-secret"

_log = structlog.get_logger("skillrelay.registry")

ReqT = TypeVar("ReqT", bound=Message)
RepT = TypeVar("RepT")
EvtT = TypeVar("EvtT", bound=Message)
RowT = TypeVar("RowT", bound=Base)
OutT = TypeVar("OutT")


class Messenger(Protocol):
    """What the service needs from NATS (``skillrelay_common.messaging.Bus`` is one)."""

    async def request(
        self, endpoint: Endpoint[ReqT, RepT], message: ReqT, *, timeout: float | None = None
    ) -> RepT | Unavailable: ...

    async def publish_event(
        self, event: Event[EvtT], payload: EvtT, *, subject: str | None = None, msg_id: str | None = None
    ) -> None: ...


@dataclass(frozen=True)
class PendingEvent:
    event: Event[Any]
    payload: Message
    subject: str


def utc_now() -> datetime:
    return datetime.now(UTC)


def _epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@contextmanager
def _conflict_on_duplicate(message: str) -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        if "unique" in str(exc.orig).lower() or "duplicate" in str(exc.orig).lower():
            raise ConflictError(message) from None
        raise


class RegistryService:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        bus: Messenger,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = session_factory
        self._bus = bus
        self._settings = settings
        self._clock = clock
        self._secrets = SecretBox(settings.secret_key or "", OAUTH_SECRET_PURPOSE)

    # -- plumbing --------------------------------------------------------------------------------

    @asynccontextmanager
    async def _unit(self) -> AsyncIterator[Repository]:
        """One transaction: committed when the block ends without an exception."""
        try:
            async with self._sessions() as session, session.begin():
                yield Repository(session)
        except IntegrityError as exc:
            # A referenced record vanished, or a record gained a reference, while we worked.
            if getattr(exc.orig, "sqlstate", None) == _FOREIGN_KEY_VIOLATION:
                raise ConflictError("a record this change refers to was changed meanwhile; retry") from None
            raise

    async def _publish(self, events: list[PendingEvent]) -> None:
        for pending in events:
            try:
                await self._bus.publish_event(pending.event, pending.payload, subject=pending.subject)
            except Exception as exc:  # the change is committed; subscribers resync on their own
                _log.error("registry.event.not_published", subject=pending.subject, error=str(exc))

    def _endpoint(self, integration_id: str) -> str:
        return convert.endpoint_url(self._settings.http.edge_public_url, integration_id)

    async def _page(
        self,
        fetch: Callable[[Repository, ListQuery, int], Awaitable[list[RowT]]],
        query: ListQuery,
        to_out: Callable[[RowT], OutT],
    ) -> Page[OutT]:
        async with self._unit() as repo:
            rows = await fetch(repo, query, query.take + 1)
            page = assemble_page(rows, query.take)
            return Page([to_out(row) for row in page.items], page.cursor)

    async def _stream(
        self,
        fetch: Callable[[Repository, ListQuery, int], Awaitable[list[RowT]]],
        query: ListQuery,
        to_out: Callable[[RowT], OutT],
    ) -> AsyncIterator[OutT]:
        """Every matching record, fetched in keyset batches (each its own short transaction), so
        memory stays constant and no connection is held while the client reads slowly."""
        batch_query = query
        while True:
            async with self._unit() as repo:
                rows = await fetch(repo, batch_query, STREAM_BATCH)
                records = [to_out(row) for row in rows]
            for record in records:
                yield record
            if len(rows) < STREAM_BATCH:
                return
            batch_query = query.next_batch(position_of(rows[-1]), STREAM_BATCH)

    # -- users and API keys ----------------------------------------------------------------------

    def is_admin_token(self, token: str | None) -> bool:
        expected = self._settings.admin_token
        return bool(token and expected and hmac.compare_digest(token.encode(), expected.encode()))

    async def create_user(self, data: schemas.UserCreate) -> schemas.UserCreated:
        name = validation.require_name(data.name)
        api_key = ids.new_secret(API_KEY_PREFIX, 32)
        now = self._clock()
        user = User(
            id=ids.new_id(ids.USER),
            name=name,
            api_key_hash=ids.hash_secret(api_key),
            created_at=now,
            updated_at=now,
        )
        async with self._unit() as repo:
            repo.add(user)
        await self._publish([_owned_event("user", user.id, user.id, "created")])
        return schemas.UserCreated(id=user.id, api_key=api_key)

    async def authenticate(self, api_key: str | None) -> str:
        """The owner id behind an API key, or ``Unauthorized``."""
        if not api_key:
            raise Unauthorized("send Authorization: Bearer <API key>")
        async with self._unit() as repo:
            user = await repo.user_by_key_hash(ids.hash_secret(api_key))
        if user is None:
            raise Unauthorized("the API key is not valid")
        return user.id

    # -- blueprints ------------------------------------------------------------------------------

    async def create_blueprint(self, owner_id: str, data: schemas.BlueprintCreate) -> schemas.Created:
        now = self._clock()
        row = Blueprint(
            id=ids.new_id(ids.BLUEPRINT),
            owner_id=owner_id,
            name=validation.require_name(data.name),
            description=data.description,
            meta=data.meta,
            created_at=now,
            updated_at=now,
        )
        async with self._unit() as repo:
            repo.add(row)
        await self._publish([_owned_event("blueprint", row.id, owner_id, "created")])
        return schemas.Created(id=row.id)

    async def list_blueprints(self, owner_id: str, query: ListQuery) -> Page[schemas.BlueprintOut]:
        return await self._page(_owned_fetch(Blueprint, owner_id), query, convert.blueprint_out)

    def stream_blueprints(self, owner_id: str, query: ListQuery) -> AsyncIterator[schemas.BlueprintOut]:
        return self._stream(_owned_fetch(Blueprint, owner_id), query, convert.blueprint_out)

    async def get_blueprint(self, owner_id: str, blueprint_id: str) -> schemas.BlueprintOut:
        async with self._unit() as repo:
            return convert.blueprint_out(await _owned(repo, Blueprint, owner_id, blueprint_id, "blueprint"))

    async def update_blueprint(
        self, owner_id: str, blueprint_id: str, data: schemas.BlueprintUpdate
    ) -> schemas.Created:
        async with self._unit() as repo:
            row = await _owned(repo, Blueprint, owner_id, blueprint_id, "blueprint")
            if data.name is not UNSET:
                row.name = validation.require_name(data.name)
            if data.description is not UNSET:
                row.description = data.description
            if data.meta is not UNSET:
                row.meta = data.meta
            row.updated_at = self._clock()
        await self._publish([_owned_event("blueprint", row.id, owner_id, "updated")])
        return schemas.Created(id=row.id)

    async def delete_blueprint(self, owner_id: str, blueprint_id: str) -> schemas.Created:
        """Skillsets and integrations that referred to it keep existing, without a blueprint."""
        async with self._unit() as repo:
            row = await _owned(repo, Blueprint, owner_id, blueprint_id, "blueprint")
            await repo.delete(row)
        await self._publish([_owned_event("blueprint", blueprint_id, owner_id, "deleted")])
        return schemas.Created(id=blueprint_id)

    # -- skillsets -------------------------------------------------------------------------------

    async def create_skillset(self, owner_id: str, data: schemas.SkillsetCreate) -> schemas.Created:
        now = self._clock()
        row = Skillset(
            id=ids.new_id(ids.SKILLSET),
            owner_id=owner_id,
            name=validation.require_name(data.name),
            description=data.description,
            blueprint_id=data.blueprint_id,
            meta=data.meta,
            revision=1,
            created_at=now,
            updated_at=now,
        )
        async with self._unit() as repo:
            if data.blueprint_id is not None:
                await _owned(repo, Blueprint, owner_id, data.blueprint_id, "blueprint")
            repo.add(row)
        await self._publish([_skillset_event(row.id, owner_id, "created", "skillset", None, None, 1)])
        return schemas.Created(id=row.id)

    async def list_skillsets(self, owner_id: str, query: ListQuery) -> Page[schemas.SkillsetOut]:
        return await self._page(_owned_fetch(Skillset, owner_id), query, convert.skillset_out)

    def stream_skillsets(self, owner_id: str, query: ListQuery) -> AsyncIterator[schemas.SkillsetOut]:
        return self._stream(_owned_fetch(Skillset, owner_id), query, convert.skillset_out)

    async def get_skillset(self, owner_id: str, skillset_id: str) -> schemas.SkillsetOut:
        async with self._unit() as repo:
            return convert.skillset_out(await _owned(repo, Skillset, owner_id, skillset_id, "skillset"))

    async def update_skillset(
        self, owner_id: str, skillset_id: str, data: schemas.SkillsetUpdate
    ) -> schemas.Created:
        async with self._unit() as repo:
            row = await _owned(repo, Skillset, owner_id, skillset_id, "skillset", lock=True)
            if data.name is not UNSET:
                row.name = validation.require_name(data.name)
            if data.description is not UNSET:
                row.description = data.description
            if data.blueprint_id is not UNSET:
                if data.blueprint_id is not None:
                    await _owned(repo, Blueprint, owner_id, data.blueprint_id, "blueprint")
                row.blueprint_id = data.blueprint_id
            if data.meta is not UNSET:
                row.meta = data.meta
            row.revision += 1
            row.updated_at = self._clock()
            revision = row.revision
        await self._publish(
            [_skillset_event(skillset_id, owner_id, "updated", "skillset", None, None, revision)]
        )
        return schemas.Created(id=skillset_id)

    async def delete_skillset(self, owner_id: str, skillset_id: str) -> schemas.Created:
        """Refused (409) while an integration serves the skillset; abilities, resources and prompts go
        with it."""
        async with self._unit() as repo:
            row = await _owned(repo, Skillset, owner_id, skillset_id, "skillset", lock=True)
            in_use = await repo.count_integrations(Integration.skillset_id == skillset_id)
            if in_use:
                raise ConflictError(
                    f"skillset is used by {in_use} integration(s): delete them or point them elsewhere first"
                )
            revision = row.revision + 1
            await repo.delete(row)
        await self._publish(
            [_skillset_event(skillset_id, owner_id, "deleted", "skillset", None, None, revision)]
        )
        return schemas.Created(id=skillset_id)

    async def _skillset_for_change(self, repo: Repository, owner_id: str, skillset_id: str) -> Skillset:
        return await _owned(repo, Skillset, owner_id, skillset_id, "skillset", lock=True)

    # -- abilities -------------------------------------------------------------------------------

    async def create_ability(
        self, owner_id: str, skillset_id: str, data: schemas.AbilityCreate
    ) -> schemas.Created:
        validation.tool_name(data.name)
        input_schema = validation.json_schema_object(data.input_schema, "inputSchema")
        output_schema = (
            None
            if data.output_schema is None
            else validation.json_schema_object(data.output_schema, "outputSchema")
        )
        validation.handler(data.handler)
        now = self._clock()
        row = Ability(
            id=ids.new_id(ids.ABILITY),
            owner_id=owner_id,
            skillset_id=skillset_id,
            name=data.name,
            title=data.title,
            description=data.description,
            input_schema=input_schema,
            output_schema=output_schema,
            annotations=data.annotations,
            handler=convert.handler_json(data.handler),
            meta=data.meta,
            created_at=now,
            updated_at=now,
        )
        with _conflict_on_duplicate(f"an ability named {data.name!r} already exists in this skillset"):
            async with self._unit() as repo:
                await self._skillset_for_change(repo, owner_id, skillset_id)
                if await repo.exists(
                    (Ability.skillset_id == skillset_id) & (Ability.name == data.name), Ability
                ):
                    raise ConflictError(f"an ability named {data.name!r} already exists in this skillset")
                repo.add(row)
                await repo.flush()
                revision = await repo.bump_revision(skillset_id, now)
        await self._publish(
            [_skillset_event(skillset_id, owner_id, "created", "ability", row.id, None, revision)]
        )
        return schemas.Created(id=row.id)

    async def list_abilities(
        self, owner_id: str, skillset_id: str, query: ListQuery
    ) -> Page[schemas.AbilityOut]:
        await self.get_skillset(owner_id, skillset_id)
        return await self._page(_child_fetch(Ability, skillset_id), query, convert.ability_out)

    async def stream_abilities(
        self, owner_id: str, skillset_id: str, query: ListQuery
    ) -> AsyncIterator[schemas.AbilityOut]:
        await self.get_skillset(owner_id, skillset_id)
        return self._stream(_child_fetch(Ability, skillset_id), query, convert.ability_out)

    async def get_ability(self, owner_id: str, skillset_id: str, ability_id: str) -> schemas.AbilityOut:
        async with self._unit() as repo:
            await _owned(repo, Skillset, owner_id, skillset_id, "skillset")
            return convert.ability_out(await _child(repo, Ability, skillset_id, ability_id, "ability"))

    async def update_ability(
        self, owner_id: str, skillset_id: str, ability_id: str, data: schemas.AbilityUpdate
    ) -> schemas.Created:
        if data.name is not UNSET:
            validation.tool_name(data.name)
        if data.input_schema is not UNSET:
            validation.json_schema_object(data.input_schema, "inputSchema")
        if data.output_schema is not UNSET and data.output_schema is not None:
            validation.json_schema_object(data.output_schema, "outputSchema")
        if data.handler is not UNSET:
            validation.handler(data.handler)
        now = self._clock()
        with _conflict_on_duplicate(f"an ability named {data.name!r} already exists in this skillset"):
            async with self._unit() as repo:
                await self._skillset_for_change(repo, owner_id, skillset_id)
                row = await _child(repo, Ability, skillset_id, ability_id, "ability")
                if data.name is not UNSET and data.name != row.name:
                    taken = (Ability.skillset_id == skillset_id) & (Ability.name == data.name)
                    if await repo.exists(taken, Ability):
                        raise ConflictError(f"an ability named {data.name!r} already exists in this skillset")
                    row.name = data.name
                if data.title is not UNSET:
                    row.title = data.title
                if data.description is not UNSET:
                    row.description = data.description
                if data.input_schema is not UNSET:
                    row.input_schema = data.input_schema
                if data.output_schema is not UNSET:
                    row.output_schema = data.output_schema
                if data.annotations is not UNSET:
                    row.annotations = data.annotations
                if data.handler is not UNSET:
                    row.handler = convert.handler_json(data.handler)
                if data.meta is not UNSET:
                    row.meta = data.meta
                row.updated_at = now
                await repo.flush()
                revision = await repo.bump_revision(skillset_id, now)
        await self._publish(
            [_skillset_event(skillset_id, owner_id, "updated", "ability", ability_id, None, revision)]
        )
        return schemas.Created(id=ability_id)

    async def delete_ability(self, owner_id: str, skillset_id: str, ability_id: str) -> schemas.Created:
        now = self._clock()
        async with self._unit() as repo:
            await self._skillset_for_change(repo, owner_id, skillset_id)
            row = await _child(repo, Ability, skillset_id, ability_id, "ability")
            await repo.delete(row)
            revision = await repo.bump_revision(skillset_id, now)
        await self._publish(
            [_skillset_event(skillset_id, owner_id, "deleted", "ability", ability_id, None, revision)]
        )
        return schemas.Created(id=ability_id)

    # -- resources -------------------------------------------------------------------------------

    async def create_resource(
        self, owner_id: str, skillset_id: str, data: schemas.ResourceCreate
    ) -> schemas.Created:
        validation.require_name(data.name)
        validation.resource_shape(
            uri_value=data.uri,
            template=data.uri_template,
            text=data.text,
            blob=data.blob,
            has_handler=data.handler is not None,
        )
        if data.handler is not None:
            validation.handler(data.handler)
        now = self._clock()
        row = Resource(
            id=ids.new_id(ids.RESOURCE),
            owner_id=owner_id,
            skillset_id=skillset_id,
            name=data.name,
            title=data.title,
            description=data.description,
            uri=data.uri,
            uri_template=data.uri_template,
            mime_type=data.mime_type,
            text_content=data.text,
            blob=data.blob,
            handler=None if data.handler is None else convert.handler_json(data.handler),
            annotations=data.annotations,
            size=data.size,
            meta=data.meta,
            created_at=now,
            updated_at=now,
        )
        with _conflict_on_duplicate(
            "a resource with this uri or uriTemplate already exists in this skillset"
        ):
            async with self._unit() as repo:
                await self._skillset_for_change(repo, owner_id, skillset_id)
                repo.add(row)
                await repo.flush()
                revision = await repo.bump_revision(skillset_id, now)
        await self._publish(
            [
                _skillset_event(
                    skillset_id, owner_id, "created", "resource", row.id, _resource_uri(row), revision
                )
            ]
        )
        return schemas.Created(id=row.id)

    async def list_resources(
        self, owner_id: str, skillset_id: str, query: ListQuery
    ) -> Page[schemas.ResourceOut]:
        await self.get_skillset(owner_id, skillset_id)
        return await self._page(_child_fetch(Resource, skillset_id), query, convert.resource_out)

    async def stream_resources(
        self, owner_id: str, skillset_id: str, query: ListQuery
    ) -> AsyncIterator[schemas.ResourceOut]:
        await self.get_skillset(owner_id, skillset_id)
        return self._stream(_child_fetch(Resource, skillset_id), query, convert.resource_out)

    async def get_resource(self, owner_id: str, skillset_id: str, resource_id: str) -> schemas.ResourceOut:
        async with self._unit() as repo:
            await _owned(repo, Skillset, owner_id, skillset_id, "skillset")
            return convert.resource_out(await _child(repo, Resource, skillset_id, resource_id, "resource"))

    async def update_resource(
        self, owner_id: str, skillset_id: str, resource_id: str, data: schemas.ResourceUpdate
    ) -> schemas.Created:
        if data.name is not UNSET:
            validation.require_name(data.name)
        if data.handler is not UNSET and data.handler is not None:
            validation.handler(data.handler)
        now = self._clock()
        with _conflict_on_duplicate(
            "a resource with this uri or uriTemplate already exists in this skillset"
        ):
            async with self._unit() as repo:
                await self._skillset_for_change(repo, owner_id, skillset_id)
                row = await _child(repo, Resource, skillset_id, resource_id, "resource")
                for field in ("name", "title", "description", "uri", "uri_template", "mime_type", "blob"):
                    value = getattr(data, field)
                    if value is not UNSET:
                        setattr(row, field, value)
                if data.text is not UNSET:
                    row.text_content = data.text
                if data.handler is not UNSET:
                    row.handler = None if data.handler is None else convert.handler_json(data.handler)
                if data.annotations is not UNSET:
                    row.annotations = data.annotations
                if data.size is not UNSET:
                    row.size = data.size
                if data.meta is not UNSET:
                    row.meta = data.meta
                # The merged record must still be a valid resource.
                validation.resource_shape(
                    uri_value=row.uri,
                    template=row.uri_template,
                    text=row.text_content,
                    blob=row.blob,
                    has_handler=row.handler is not None,
                )
                row.updated_at = now
                await repo.flush()
                revision = await repo.bump_revision(skillset_id, now)
        await self._publish(
            [
                _skillset_event(
                    skillset_id, owner_id, "updated", "resource", row.id, _resource_uri(row), revision
                )
            ]
        )
        return schemas.Created(id=resource_id)

    async def delete_resource(self, owner_id: str, skillset_id: str, resource_id: str) -> schemas.Created:
        now = self._clock()
        async with self._unit() as repo:
            await self._skillset_for_change(repo, owner_id, skillset_id)
            row = await _child(repo, Resource, skillset_id, resource_id, "resource")
            uri = _resource_uri(row)
            await repo.delete(row)
            revision = await repo.bump_revision(skillset_id, now)
        await self._publish(
            [_skillset_event(skillset_id, owner_id, "deleted", "resource", resource_id, uri, revision)]
        )
        return schemas.Created(id=resource_id)

    # -- prompts ---------------------------------------------------------------------------------

    async def create_prompt(
        self, owner_id: str, skillset_id: str, data: schemas.PromptCreate
    ) -> schemas.Created:
        validation.require_name(data.name)
        validation.prompt_shape(data.arguments, data.messages, data.handler is not None)
        if data.handler is not None:
            validation.handler(data.handler)
        now = self._clock()
        row = Prompt(
            id=ids.new_id(ids.PROMPT),
            owner_id=owner_id,
            skillset_id=skillset_id,
            name=data.name,
            title=data.title,
            description=data.description,
            arguments=msgspec.to_builtins(data.arguments),
            messages=msgspec.to_builtins(data.messages),
            handler=None if data.handler is None else convert.handler_json(data.handler),
            meta=data.meta,
            created_at=now,
            updated_at=now,
        )
        with _conflict_on_duplicate(f"a prompt named {data.name!r} already exists in this skillset"):
            async with self._unit() as repo:
                await self._skillset_for_change(repo, owner_id, skillset_id)
                if await repo.exists(
                    (Prompt.skillset_id == skillset_id) & (Prompt.name == data.name), Prompt
                ):
                    raise ConflictError(f"a prompt named {data.name!r} already exists in this skillset")
                repo.add(row)
                await repo.flush()
                revision = await repo.bump_revision(skillset_id, now)
        await self._publish(
            [_skillset_event(skillset_id, owner_id, "created", "prompt", row.id, None, revision)]
        )
        return schemas.Created(id=row.id)

    async def list_prompts(
        self, owner_id: str, skillset_id: str, query: ListQuery
    ) -> Page[schemas.PromptOut]:
        await self.get_skillset(owner_id, skillset_id)
        return await self._page(_child_fetch(Prompt, skillset_id), query, convert.prompt_out)

    async def stream_prompts(
        self, owner_id: str, skillset_id: str, query: ListQuery
    ) -> AsyncIterator[schemas.PromptOut]:
        await self.get_skillset(owner_id, skillset_id)
        return self._stream(_child_fetch(Prompt, skillset_id), query, convert.prompt_out)

    async def get_prompt(self, owner_id: str, skillset_id: str, prompt_id: str) -> schemas.PromptOut:
        async with self._unit() as repo:
            await _owned(repo, Skillset, owner_id, skillset_id, "skillset")
            return convert.prompt_out(await _child(repo, Prompt, skillset_id, prompt_id, "prompt"))

    async def update_prompt(
        self, owner_id: str, skillset_id: str, prompt_id: str, data: schemas.PromptUpdate
    ) -> schemas.Created:
        if data.name is not UNSET:
            validation.require_name(data.name)
        if data.handler is not UNSET and data.handler is not None:
            validation.handler(data.handler)
        now = self._clock()
        with _conflict_on_duplicate(f"a prompt named {data.name!r} already exists in this skillset"):
            async with self._unit() as repo:
                await self._skillset_for_change(repo, owner_id, skillset_id)
                row = await _child(repo, Prompt, skillset_id, prompt_id, "prompt")
                if data.name is not UNSET and data.name != row.name:
                    taken = (Prompt.skillset_id == skillset_id) & (Prompt.name == data.name)
                    if await repo.exists(taken, Prompt):
                        raise ConflictError(f"a prompt named {data.name!r} already exists in this skillset")
                    row.name = data.name
                if data.title is not UNSET:
                    row.title = data.title
                if data.description is not UNSET:
                    row.description = data.description
                arguments = (
                    msgspec.convert(row.arguments, list[schemas.PromptArgumentIn])
                    if data.arguments is UNSET
                    else data.arguments
                )
                messages = (
                    msgspec.convert(row.messages, list[schemas.PromptMessageIn])
                    if data.messages is UNSET
                    else data.messages
                )
                handler = convert.load_dynamic_handler(row.handler) if data.handler is UNSET else data.handler
                validation.prompt_shape(arguments, messages, handler is not None)
                row.arguments = msgspec.to_builtins(arguments)
                row.messages = msgspec.to_builtins(messages)
                row.handler = None if handler is None else convert.handler_json(handler)
                if data.meta is not UNSET:
                    row.meta = data.meta
                row.updated_at = now
                await repo.flush()
                revision = await repo.bump_revision(skillset_id, now)
        await self._publish(
            [_skillset_event(skillset_id, owner_id, "updated", "prompt", prompt_id, None, revision)]
        )
        return schemas.Created(id=prompt_id)

    async def delete_prompt(self, owner_id: str, skillset_id: str, prompt_id: str) -> schemas.Created:
        now = self._clock()
        async with self._unit() as repo:
            await self._skillset_for_change(repo, owner_id, skillset_id)
            row = await _child(repo, Prompt, skillset_id, prompt_id, "prompt")
            await repo.delete(row)
            revision = await repo.bump_revision(skillset_id, now)
        await self._publish(
            [_skillset_event(skillset_id, owner_id, "deleted", "prompt", prompt_id, None, revision)]
        )
        return schemas.Created(id=prompt_id)

    # -- OAuth connections -----------------------------------------------------------------------

    async def create_oauth_connection(
        self, owner_id: str, data: schemas.OAuthConnectionCreate
    ) -> schemas.Created:
        validation.require_name(data.name)
        validation.require_name(data.client_id, "clientId")
        if not data.client_secret:
            raise InvalidInput("clientSecret must not be empty")
        validation.oauth_endpoints(
            issuer=data.issuer,
            authorization_url=data.authorization_url,
            token_url=data.token_url,
            userinfo_url=data.userinfo_url,
        )
        now = self._clock()
        row = OAuthConnection(
            id=ids.new_id(ids.OAUTH_CONNECTION),
            owner_id=owner_id,
            name=data.name,
            description=data.description,
            client_id=data.client_id,
            client_secret_encrypted=self._secrets.encrypt(data.client_secret),
            scopes=list(data.scopes),
            issuer=data.issuer,
            authorization_url=data.authorization_url,
            token_url=data.token_url,
            userinfo_url=data.userinfo_url,
            meta=data.meta,
            created_at=now,
            updated_at=now,
        )
        async with self._unit() as repo:
            repo.add(row)
        await self._publish([_owned_event("oauthconnection", row.id, owner_id, "created")])
        return schemas.Created(id=row.id)

    async def list_oauth_connections(
        self, owner_id: str, query: ListQuery
    ) -> Page[schemas.OAuthConnectionOut]:
        return await self._page(_owned_fetch(OAuthConnection, owner_id), query, convert.oauth_connection_out)

    def stream_oauth_connections(
        self, owner_id: str, query: ListQuery
    ) -> AsyncIterator[schemas.OAuthConnectionOut]:
        return self._stream(_owned_fetch(OAuthConnection, owner_id), query, convert.oauth_connection_out)

    async def get_oauth_connection(self, owner_id: str, connection_id: str) -> schemas.OAuthConnectionOut:
        async with self._unit() as repo:
            row = await _owned(repo, OAuthConnection, owner_id, connection_id, "OAuth connection")
            return convert.oauth_connection_out(row)

    async def update_oauth_connection(
        self, owner_id: str, connection_id: str, data: schemas.OAuthConnectionUpdate
    ) -> schemas.Created:
        async with self._unit() as repo:
            row = await _owned(repo, OAuthConnection, owner_id, connection_id, "OAuth connection")
            if data.name is not UNSET:
                row.name = validation.require_name(data.name)
            if data.description is not UNSET:
                row.description = data.description
            if data.client_id is not UNSET:
                row.client_id = validation.require_name(data.client_id, "clientId")
            if data.client_secret is not UNSET:
                if not data.client_secret:
                    raise InvalidInput("clientSecret must not be empty")
                row.client_secret_encrypted = self._secrets.encrypt(data.client_secret)
            if data.scopes is not UNSET:
                row.scopes = list(data.scopes)
            for field in ("issuer", "authorization_url", "token_url", "userinfo_url"):
                value = getattr(data, field)
                if value is not UNSET:
                    setattr(row, field, value)
            if data.meta is not UNSET:
                row.meta = data.meta
            validation.oauth_endpoints(
                issuer=row.issuer,
                authorization_url=row.authorization_url,
                token_url=row.token_url,
                userinfo_url=row.userinfo_url,
            )
            row.updated_at = self._clock()
        await self._publish([_owned_event("oauthconnection", connection_id, owner_id, "updated")])
        return schemas.Created(id=connection_id)

    async def delete_oauth_connection(self, owner_id: str, connection_id: str) -> schemas.Created:
        """Refused (409) while an integration is gated by it: deleting it must not open them up."""
        async with self._unit() as repo:
            row = await _owned(repo, OAuthConnection, owner_id, connection_id, "OAuth connection")
            in_use = await repo.count_integrations(Integration.oauth_connection_id == connection_id)
            if in_use:
                raise ConflictError(f"OAuth connection is used by {in_use} integration(s)")
            await repo.delete(row)
        await self._publish([_owned_event("oauthconnection", connection_id, owner_id, "deleted")])
        return schemas.Created(id=connection_id)

    async def oauth_connection_secret(self, connection_id: str) -> OAuthConnectionSecret | None:
        """For the auth service over NATS: the connection with its decrypted client secret."""
        async with self._unit() as repo:
            row = await repo.oauth_connection(connection_id)
            if row is None:
                return None
            return OAuthConnectionSecret(
                id=row.id,
                owner_id=row.owner_id,
                name=row.name,
                client_id=row.client_id,
                client_secret=self._secrets.decrypt(row.client_secret_encrypted),
                scopes=list(row.scopes),
                issuer=row.issuer,
                authorization_url=row.authorization_url,
                token_url=row.token_url,
                userinfo_url=row.userinfo_url,
            )

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
            await _owned(repo, Skillset, owner_id, skillset_id, "skillset")
        if blueprint_id is not None:
            await _owned(repo, Blueprint, owner_id, blueprint_id, "blueprint")
        if connection_id is not None:
            await _owned(repo, OAuthConnection, owner_id, connection_id, "OAuth connection")

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
            raise ServiceUnavailable(f"the auth service could not issue a token: {_reply_reason(reply)}")
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
            "registry.integration.create_undone", integration_id=integration_id, reason=_reply_reason(reply)
        )
        if isinstance(reply, Unavailable):
            # Auth may have minted the token and only the answer got lost: ask it to forget the token.
            await self._bus.request(AUTH_TOKEN_REVOKE, RevokeToken(integration_id=integration_id))
        async with self._unit() as repo:
            row = await repo.integration(integration_id)
            if row is not None:
                await repo.delete(row)

    async def list_integrations(self, owner_id: str, query: ListQuery) -> Page[schemas.IntegrationOut]:
        return await self._page(_owned_fetch(Integration, owner_id), query, self._integration_out)

    def stream_integrations(self, owner_id: str, query: ListQuery) -> AsyncIterator[schemas.IntegrationOut]:
        return self._stream(_owned_fetch(Integration, owner_id), query, self._integration_out)

    def _integration_out(self, row: Integration) -> schemas.IntegrationOut:
        return convert.integration_out(row, self._settings.http.edge_public_url)

    async def get_integration(self, owner_id: str, integration_id: str) -> schemas.IntegrationOut:
        async with self._unit() as repo:
            return self._integration_out(
                await _owned(repo, Integration, owner_id, integration_id, "integration")
            )

    async def update_integration(
        self, owner_id: str, integration_id: str, data: schemas.IntegrationUpdate
    ) -> schemas.Created:
        changed: list[str] = []
        async with self._unit() as repo:
            row = await _owned(repo, Integration, owner_id, integration_id, "integration", lock=True)
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
            raise ServiceUnavailable(f"the auth service could not rotate the token: {_reply_reason(reply)}")
        return schemas.TokenRotated(id=integration_id, access_token=reply.token)

    async def delete_integration(self, owner_id: str, integration_id: str) -> schemas.Created:
        """Revoke the token first (auth answers once every edge replica dropped it), then the row, then
        end its sessions. If auth is unreachable nothing changes (503)."""
        integration = await self.get_integration(owner_id, integration_id)
        reply = await self._bus.request(AUTH_TOKEN_REVOKE, RevokeToken(integration_id=integration_id))
        if not isinstance(reply, Ok | NotFound):
            raise ServiceUnavailable(f"the auth service could not revoke the token: {_reply_reason(reply)}")
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

    async def list_integration_sessions(self, owner_id: str, integration_id: str) -> schemas.SessionListOut:
        await self.get_integration(owner_id, integration_id)
        reply = await self._bus.request(SESSIONS_LIST, ListSessions(integration_id=integration_id))
        if not isinstance(reply, SessionList):
            raise ServiceUnavailable(f"the sessions service did not answer: {_reply_reason(reply)}")
        return schemas.SessionListOut(items=[_session_out(info) for info in reply.sessions])

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
                skillset=convert.skillset_snapshot(
                    skillset,
                    await repo.children(Ability, skillset.id),
                    await repo.children(Resource, skillset.id),
                    await repo.children(Prompt, skillset.id),
                ),
            )


# --- helpers ---------------------------------------------------------------------------------------


async def _owned(
    repo: Repository, model: type[RowT], owner_id: str, record_id: str, what: str, *, lock: bool = False
) -> RowT:
    row = await repo.owned(model, owner_id, record_id, lock=lock)
    if row is None:
        raise NotFoundError(what)
    return row


async def _child(repo: Repository, model: type[RowT], skillset_id: str, child_id: str, what: str) -> RowT:
    row = await repo.child(model, skillset_id, child_id)
    if row is None:
        raise NotFoundError(what)
    return row


def _owned_fetch(
    model: type[RowT], owner_id: str
) -> Callable[[Repository, ListQuery, int], Awaitable[list[RowT]]]:
    async def fetch(repo: Repository, query: ListQuery, take: int) -> list[RowT]:
        return await repo.page(model, owner_id, query, take)

    return fetch


def _child_fetch(
    model: type[RowT], skillset_id: str
) -> Callable[[Repository, ListQuery, int], Awaitable[list[RowT]]]:
    async def fetch(repo: Repository, query: ListQuery, take: int) -> list[RowT]:
        return await repo.child_page(model, skillset_id, query, take)

    return fetch


def _owned_event(entity: Any, record_id: str, owner_id: str, change: ChangeKind) -> PendingEvent:
    return PendingEvent(
        OWNED_RECORD_CHANGED,
        OwnedRecordChanged(id=record_id, owner_id=owner_id, change=change, entity=entity),
        f"events.registry.{entity}.{change}",
    )


def _skillset_event(
    skillset_id: str,
    owner_id: str,
    change: ChangeKind,
    entity: Any,
    item_id: str | None,
    uri: str | None,
    revision: int,
) -> PendingEvent:
    return PendingEvent(
        SKILLSET_CHANGED,
        SkillsetChanged(
            skillset_id=skillset_id,
            owner_id=owner_id,
            change=change,
            entity=entity,
            item_id=item_id,
            uri=uri,
            revision=revision,
        ),
        f"events.registry.{entity}.{change}",
    )


def _resource_uri(row: Resource) -> str | None:
    return row.uri if row.uri is not None else row.uri_template


def _reply_reason(reply: object) -> str:
    if isinstance(reply, Unavailable):
        return reply.message or "unavailable"
    return type(reply).__name__


def _session_out(info: SessionInfo) -> schemas.SessionOut:
    return schemas.SessionOut(
        id=info.session_id,
        principal=info.principal,
        protocol_version=info.protocol_version,
        created_at=_epoch(info.created_at),
        last_seen_at=_epoch(info.last_seen_at),
        expires_at=_epoch(info.expires_at),
    )
