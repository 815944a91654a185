"""Reading a source's listings (its catalog): an upstream MCP server's tools, resources, resource
templates and prompts (``skillrelay_common.upstream.read_catalog``), or an OpenAPI document's
operations as tools (the document given inline, or fetched through the SSRF-guarded client)."""

from __future__ import annotations

from typing import Any

import msgspec
import yaml

from skillrelay_common.outbound import BodyTooLarge, OutboundClient, OutboundError, RequestShape
from skillrelay_common.schemas.abilities import SourceDef
from skillrelay_common.ssrf import TargetRefused
from skillrelay_common.upstream import UpstreamError, read_catalog
from skillrelay_registry.sources.openapi import DocumentInvalid, read_tools, server_url

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024


class SourceUnreadable(Exception):
    """The source's listings could not be read (message safe to show: it never holds header values).
    ``refused`` marks a URL the SSRF guard will never call (the owner must change it)."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.refused = refused


class SourceReader:
    def __init__(self, client: OutboundClient, *, allow_private: bool) -> None:
        self._client = client
        self._allow_private = allow_private

    async def close(self) -> None:
        await self._client.aclose()

    async def read(self, source: SourceDef, document: dict[str, Any] | None) -> dict[str, Any]:
        """The catalog to store: ``{"tools", "resources", "resourceTemplates", "prompts"}`` (an
        ``openapi`` source's also ``baseUrl`` from the document's servers)."""
        if source.type == "openapi":
            return await self._read_openapi(source, document)
        return await self._read_mcp(source)

    async def _read_openapi(self, source: SourceDef, document: dict[str, Any] | None) -> dict[str, Any]:
        if document is None:
            document = await self.fetch_document(source)
        try:
            tools = read_tools(document)
        except DocumentInvalid as exc:
            raise SourceUnreadable(str(exc)) from None
        catalog: dict[str, Any] = {"tools": tools}
        servers = server_url(document)
        if servers is not None:
            catalog["baseUrl"] = servers
        info = document.get("info")
        if isinstance(info, dict) and isinstance(info.get("title"), str):
            catalog["title"] = info["title"][:256]  # the source's name when the owner gives none
        return catalog

    async def fetch_document(self, source: SourceDef) -> dict[str, Any]:
        assert source.url is not None
        try:
            shape = RequestShape("GET", source.url, {**source.headers, "Accept": "application/json"})
            response = await self._client.send(
                shape, timeout=source.timeout_ms / 1000, max_body=MAX_DOCUMENT_BYTES
            )
        except TargetRefused as exc:
            raise SourceUnreadable(f"url refused: {exc}", refused=True) from None
        except TimeoutError:
            raise SourceUnreadable(f"the document was not read within {source.timeout_ms} ms") from None
        except BodyTooLarge:
            raise SourceUnreadable(f"the document is larger than {MAX_DOCUMENT_BYTES} bytes") from None
        except OutboundError as exc:
            raise SourceUnreadable(f"the document could not be read: {exc}") from None
        if not 200 <= response.status < 300:
            raise SourceUnreadable(f"reading the document answered HTTP {response.status}")
        document = _decode_document(response.body)
        if not isinstance(document, dict):
            raise SourceUnreadable("the OpenAPI document must be a JSON object")
        return document

    async def _read_mcp(self, source: SourceDef) -> dict[str, Any]:
        assert source.url is not None
        try:
            # The guard's decision first: a URL it will never call is the owner's to change (400).
            await self._client.targets.target(source.url)
        except TargetRefused as exc:
            raise SourceUnreadable(f"url refused: {exc}", refused=True) from None
        try:
            catalog = await read_catalog(source, allow_private=self._allow_private)
        except UpstreamError as exc:
            raise SourceUnreadable(f"the upstream could not be read: {exc.message}") from None
        return {
            "tools": catalog.tools,
            "resources": catalog.resources,
            "resourceTemplates": catalog.resource_templates,
            "prompts": catalog.prompts,
        }


def _decode_document(body: bytes) -> Any:
    """A document as JSON or YAML. YAML aliases are refused: a few bytes of them can stand for an
    exponentially large document (the "billion laughs")."""
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        pass
    try:
        text = body.decode()
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise SourceUnreadable("the document uses YAML aliases (*name), which are not read")
        return yaml.safe_load(text)
    except (UnicodeDecodeError, yaml.YAMLError):
        raise SourceUnreadable("the document is neither JSON nor YAML") from None
