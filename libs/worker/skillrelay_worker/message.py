"""The base of every message on Skillrelay's bus, the worker protocol's included.

Subclasses declare ``kw_only=True`` (msgspec applies it per class) so fields may be added
with defaults in any order. Messages are tagged (``"kind": "<ClassName>"``) so that replies form
unions decoded in one pass and
dispatched with ``match``. Evolve a message by appending fields with defaults; never change a type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema


class Message(msgspec.Struct, kw_only=True, omit_defaults=True, tag=True, tag_field="kind"):
    """Base of every NATS message."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """Lets pydantic (FastStream's AsyncAPI generator) describe a message by its msgspec JSON
        schema. pydantic is imported only when asked: a worker installs without it."""
        from skillrelay_worker.pydantic_schema import msgspec_core_schema

        return msgspec_core_schema(cls)
