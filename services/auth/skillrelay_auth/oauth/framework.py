"""Authlib's OAuth 2 server framework adapted to Litestar.

Authlib's server is synchronous and framework-neutral: a framework integration turns its request into an
``OAuth2Request`` and Authlib's ``(status, body, headers)`` into its response. Here the Litestar handler
reads the body first (async), Authlib's validation runs in a worker thread (``in_thread``), and the few
places where Authlib asks storage something (client lookup, codes, tokens) hop back onto the event loop
(``on_loop``) where the asyncpg engine and the NATS client live.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import anyio.from_thread
import anyio.to_thread
from authlib.oauth2 import AuthorizationServer, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749 import JsonPayload, JsonRequest
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload

T = TypeVar("T")


class FormRequest(OAuth2Request):  # type: ignore[misc]
    """An OAuth request whose parameters (query or form, never both) were read and checked already."""

    def __init__(self, method: str, uri: str, headers: Mapping[str, str], params: dict[str, str]) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = BasicOAuth2Payload(params)
        self._params = params

    @property
    def args(self) -> dict[str, str]:
        return self._params

    @property
    def form(self) -> dict[str, str]:
        return self._params


class JsonBody(JsonPayload):  # type: ignore[misc]
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    @property
    def data(self) -> dict[str, Any]:
        return self._data


class JsonBodyRequest(JsonRequest):  # type: ignore[misc]
    def __init__(self, uri: str, headers: Mapping[str, str], data: dict[str, Any]) -> None:
        super().__init__("POST", uri, headers)
        self.payload = JsonBody(data)


@dataclass
class Answer:
    """Authlib's ``(status, body, headers)``; ``location`` is what RFC 9207's issuer extension edits."""

    status: int
    body: Any
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        return next((value for key, value in self.headers if key.lower() == "location"), None)

    @location.setter
    def location(self, url: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != "location"] + [("Location", url)]


class LitestarAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """The framework half of an Authlib authorization server: requests come in already built."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if not isinstance(request, OAuth2Request):
            raise TypeError("build a FormRequest in the Litestar handler")
        return request

    def create_json_request(self, request: Any) -> JsonRequest:
        if not isinstance(request, JsonRequest):
            raise TypeError("build a JsonBodyRequest in the Litestar handler")
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Answer:
        return Answer(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib's signals (client authenticated, token revoked): nothing listens; audit is done by
        the endpoints themselves."""


# Authlib refuses to build an error whose description holds characters RFC 6749 forbids there (a quote,
# a backslash, non-ASCII) with this ValueError, and some of its descriptions quote the request.
_FORBIDDEN_DESCRIPTION = "Error description contains forbidden characters"


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run Authlib's synchronous code off the event loop."""
    try:
        return await anyio.to_thread.run_sync(partial(fn, *args))
    except ValueError as exc:
        if not str(exc).startswith(_FORBIDDEN_DESCRIPTION):
            raise
        description = "a parameter holds characters that OAuth does not allow here"
        raise OAuth2Error(description, error="invalid_request") from None


def on_loop(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """From Authlib's thread, await ``fn(*args)`` on the event loop (storage, signing, the bus)."""
    return anyio.from_thread.run(fn, *args)
