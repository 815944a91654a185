"""Client ID metadata documents: the client_id is an https URL serving the client's metadata."""

from __future__ import annotations

from typing import Any

from skillrelay_auth.safe_http import FetchFailed, SafeHttp, UnsafeTarget


class HttpClientDocuments:
    def __init__(self, http: SafeHttp) -> None:
        self._http = http

    async def fetch(self, url: str) -> dict[str, Any]:
        try:
            document = await self._http.get_json(url, require_https=True)
        except (FetchFailed, UnsafeTarget) as exc:
            raise ValueError(f"client metadata document not usable: {exc}") from None
        if not isinstance(document, dict):
            raise ValueError("client metadata document is not a JSON object")
        return document
