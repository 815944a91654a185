"""Resources: what creating and updating one checks and merges (a static text or blob, or a URI
template with a dynamic handler)."""

from __future__ import annotations

from msgspec import UNSET

from skillrelay_registry import convert, schemas, validation
from skillrelay_registry.kinds import RESOURCE
from skillrelay_registry.models import Resource
from skillrelay_registry.repo import Repository
from skillrelay_registry.usecases.base import conflict_on_duplicate, skillset_event
from skillrelay_registry.usecases.contents import ContentUseCases, copy_given


class ResourceUseCases(ContentUseCases):
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
        row = Resource(
            **self._new_item(RESOURCE, owner_id, skillset_id, data),
            uri=data.uri,
            uri_template=data.uri_template,
            mime_type=data.mime_type,
            text_content=data.text,
            blob=data.blob,
            handler=None if data.handler is None else convert.handler_json(data.handler),
            annotations=data.annotations,
            size=data.size,
        )
        with conflict_on_duplicate(RESOURCE.duplicate()):
            async with self._unit() as repo:
                await self._skillset_for_change(repo, owner_id, skillset_id)
                repo.add(row)
                await repo.flush()
                revision = await self._bump_revision_if_it_fits(repo, skillset_id, row.created_at)
        await self._publish(
            [
                skillset_event(
                    skillset_id, owner_id, "created", "resource", row.id, RESOURCE.event_uri(row), revision
                )
            ]
        )
        return schemas.Created(id=row.id)

    async def update_resource(
        self, owner_id: str, skillset_id: str, resource_id: str, data: schemas.ResourceUpdate
    ) -> schemas.Created:
        if data.name is not UNSET:
            validation.require_name(data.name)
        if data.handler is not UNSET and data.handler is not None:
            validation.handler(data.handler)

        async def merge(repo: Repository, row: Resource) -> None:
            fields = ("name", "title", "description", "uri", "uri_template", "mime_type", "blob")
            copy_given(row, data, (*fields, "annotations", "size", "meta"))
            if data.text is not UNSET:
                row.text_content = data.text
            if data.handler is not UNSET:
                row.handler = None if data.handler is None else convert.handler_json(data.handler)
            # The merged record must still be a valid resource.
            validation.resource_shape(
                uri_value=row.uri,
                template=row.uri_template,
                text=row.text_content,
                blob=row.blob,
                has_handler=row.handler is not None,
            )

        return await self._update(
            RESOURCE, owner_id, skillset_id, resource_id, merge, duplicate=RESOURCE.duplicate()
        )
