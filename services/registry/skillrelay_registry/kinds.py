"""One definition per kind of skillset content — abilities (MCP tools), resources and prompts.

Each ``ContentKind`` names its table row, its REST bodies and record, the converter between them and
the words its paths, events and errors use. The REST controllers (``api/contents.py``), the shared use
cases (``usecases/contents.py``) and the dashboard's pages are all built from these three definitions;
what really differs between the kinds — validation and how an update merges — stays in the kind's own
use-case module (``usecases/abilities.py``, ``resources.py``, ``prompts.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import msgspec

from skillrelay_registry import convert, schemas
from skillrelay_registry.models import Ability, Base, Prompt, Resource

RowT = TypeVar("RowT", bound=Base)
RecordT = TypeVar("RecordT", bound=msgspec.Struct)
KindName = Literal["ability", "resource", "prompt"]


def _no_uri(row: Any) -> str | None:
    return None


def resource_uri(row: Resource) -> str | None:
    return row.uri if row.uri is not None else row.uri_template


@dataclass(frozen=True, eq=False)
class ContentKind(Generic[RowT, RecordT]):
    name: KindName  # REST path segment (``…/ability/create``), event entity, "ability not found"
    plural: str  # the dashboard's slug and section
    title: str
    model: type[RowT]
    create_body: type[msgspec.Struct]
    update_body: type[msgspec.Struct]
    record: type[RecordT]
    page: type[msgspec.Struct]
    to_record: Callable[[RowT], RecordT]
    # The 409's message when a new or renamed item collides with another (``{value!r}`` is its name).
    duplicate_message: str
    # The URI a change event carries, so the edge can tell the resource's subscribers.
    event_uri: Callable[[RowT], str | None] = _no_uri

    def duplicate(self, value: object = None) -> str:
        return self.duplicate_message.format(value=value)


ABILITY = ContentKind(
    name="ability",
    plural="abilities",
    title="Ability",
    model=Ability,
    create_body=schemas.AbilityCreate,
    update_body=schemas.AbilityUpdate,
    record=schemas.AbilityOut,
    page=schemas.AbilityPage,
    to_record=convert.ability_out,
    duplicate_message="an ability named {value!r} already exists in this skillset",
)
RESOURCE = ContentKind(
    name="resource",
    plural="resources",
    title="Resource",
    model=Resource,
    create_body=schemas.ResourceCreate,
    update_body=schemas.ResourceUpdate,
    record=schemas.ResourceOut,
    page=schemas.ResourcePage,
    to_record=convert.resource_out,
    duplicate_message="a resource with this uri or uriTemplate already exists in this skillset",
    event_uri=resource_uri,
)
PROMPT = ContentKind(
    name="prompt",
    plural="prompts",
    title="Prompt",
    model=Prompt,
    create_body=schemas.PromptCreate,
    update_body=schemas.PromptUpdate,
    record=schemas.PromptOut,
    page=schemas.PromptPage,
    to_record=convert.prompt_out,
    duplicate_message="a prompt named {value!r} already exists in this skillset",
)
KINDS: tuple[ContentKind[Any, Any], ...] = (ABILITY, RESOURCE, PROMPT)
