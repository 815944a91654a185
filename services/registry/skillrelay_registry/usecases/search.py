"""Finding an owner's skillsets, abilities and MCP servers by words in their names or descriptions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select

from skillrelay_registry import convert, schemas
from skillrelay_registry.models import Ability, Integration, Skillset
from skillrelay_registry.usecases.base import UseCaseBase

MAX_HITS = 50
MAX_QUERY_LENGTH = 200


@dataclass(frozen=True)
class SearchResults:
    skillsets: list[schemas.SkillsetOut]
    abilities: list[schemas.AbilityOut]
    integrations: list[schemas.IntegrationOut]


def _pattern(words: str) -> str:
    """A case-insensitive substring pattern, with LIKE's own characters taken literally."""
    escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _matches(model: Any, pattern: str, words: str) -> Any:
    return or_(
        model.name.ilike(pattern, escape="\\"),
        model.description.ilike(pattern, escape="\\"),
        model.id == words,
    )


class SearchUseCases(UseCaseBase):
    async def search(self, owner_id: str, words: str) -> SearchResults:
        """At most ``MAX_HITS`` of each kind whose name or description holds ``words`` (or whose id is
        ``words``), most recently created first."""
        words = words.strip()[:MAX_QUERY_LENGTH]
        if not words:
            return SearchResults([], [], [])
        pattern = _pattern(words)
        async with self._unit() as repo:
            found: list[list[Any]] = []
            for model in (Skillset, Ability, Integration):
                statement = (
                    select(model)
                    .where(model.owner_id == owner_id, _matches(model, pattern, words))
                    .order_by(model.created_at.desc(), model.id.desc())
                    .limit(MAX_HITS)
                )
                found.append(list((await repo.session.scalars(statement)).all()))
        edge = self._settings.http.edge_public_url
        return SearchResults(
            skillsets=[convert.skillset_out(row) for row in found[0]],
            abilities=[convert.ability_out(row) for row in found[1]],
            integrations=[convert.integration_out(row, edge) for row in found[2]],
        )
