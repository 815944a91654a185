"""The registry's use cases: users, blueprints, skillsets with their abilities, resources and prompts,
OAuth connections and MCP server integrations. No web framework here; the REST API, the dashboard and
the NATS handlers all call ``RegistryService``.

Every owner-facing method takes ``owner_id`` first and treats another owner's record exactly like a
missing one. Changes are committed first, then their events are published (a subscriber that reloads
on an event must see the change). The use cases live in ``usecases/``, one module per concern.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from skillrelay_registry import schemas
from skillrelay_registry.kinds import ContentKind, KindName
from skillrelay_registry.usecases.abilities import AbilityUseCases
from skillrelay_registry.usecases.accounts import AccountUseCases
from skillrelay_registry.usecases.base import (
    API_KEY_PREFIX,
    OAUTH_SECRET_PURPOSE,
    Messenger,
    PendingEvent,
    utc_now,
)
from skillrelay_registry.usecases.integrations import IntegrationUseCases
from skillrelay_registry.usecases.oauth_connections import OAuthConnectionUseCases
from skillrelay_registry.usecases.prompts import PromptUseCases
from skillrelay_registry.usecases.resources import ResourceUseCases
from skillrelay_registry.usecases.search import SearchUseCases
from skillrelay_registry.usecases.session_admin import SessionAdminUseCases
from skillrelay_registry.usecases.skillsets import SkillsetUseCases
from skillrelay_registry.usecases.sources import SourceUseCases
from skillrelay_registry.usecases.worker_credentials import WorkerCredentialUseCases

__all__ = [
    "API_KEY_PREFIX",
    "OAUTH_SECRET_PURPOSE",
    "Messenger",
    "PendingEvent",
    "RegistryService",
    "utc_now",
]


class RegistryService(
    AccountUseCases,
    SkillsetUseCases,
    AbilityUseCases,
    ResourceUseCases,
    PromptUseCases,
    SourceUseCases,
    OAuthConnectionUseCases,
    IntegrationUseCases,
    WorkerCredentialUseCases,
    SearchUseCases,
    SessionAdminUseCases,
):
    """``RegistryService(session_factory, bus, settings)``: every use case, each method per call."""

    async def create_content(
        self, kind: ContentKind[Any, Any], owner_id: str, skillset_id: str, data: Any
    ) -> schemas.Created:
        """Create an item of ``kind`` from its create body (``kind.create_body``)."""
        create: dict[KindName, Callable[[str, str, Any], Awaitable[schemas.Created]]] = {
            "ability": self.create_ability,
            "resource": self.create_resource,
            "prompt": self.create_prompt,
        }
        return await create[kind.name](owner_id, skillset_id, data)

    async def update_content(
        self, kind: ContentKind[Any, Any], owner_id: str, skillset_id: str, item_id: str, data: Any
    ) -> schemas.Created:
        """Update an item of ``kind`` from its update body (``kind.update_body``)."""
        update: dict[KindName, Callable[[str, str, str, Any], Awaitable[schemas.Created]]] = {
            "ability": self.update_ability,
            "resource": self.update_resource,
            "prompt": self.update_prompt,
        }
        return await update[kind.name](owner_id, skillset_id, item_id, data)
