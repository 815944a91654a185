"""A source's headers at rest: the JSON object of them encrypted with the registry's secret key (the
same encryption as OAuth client secrets, under a purpose of its own)."""

from __future__ import annotations

from typing import cast

import msgspec
import structlog

from skillrelay_common.crypto import SecretBox, SecretBoxError
from skillrelay_registry.models import Source

SOURCE_HEADERS_PURPOSE = "source-headers"
_log = structlog.get_logger("skillrelay.registry.sources")


class SourceHeaderBox:
    def __init__(self, secret_key: str | None) -> None:
        self._box = SecretBox(secret_key or "", SOURCE_HEADERS_PURPOSE)

    def encrypt(self, headers: dict[str, str]) -> str | None:
        return self._box.encrypt(msgspec.json.encode(headers).decode()) if headers else None

    def headers_of(self, row: Source) -> dict[str, str]:
        """A source's headers in clear (for reading it, and for the snapshot the edge receives)."""
        if row.headers_encrypted is None:
            return {}
        try:
            return cast(dict[str, str], msgspec.json.decode(self._box.decrypt(row.headers_encrypted)))
        except SecretBoxError:
            # The key changed: the source is served without its headers (its upstream will say 401).
            _log.error("registry.source.headers_undecryptable", source_id=row.id)
            return {}
