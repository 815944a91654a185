"""The SSRF decision and the pinned address, cached per URL for the lifetime of the name's answer.

Every new resolution is checked again (a name that now answers with a private address is refused
from that resolution on); between resolutions a call costs one dict lookup and one clock read, not a
``getaddrinfo`` round trip to a thread. Concurrent calls for a name being resolved share one
resolution. Refusals are cached for the same lifetime (a refused name is not re-resolved per call).

The system resolver (``getaddrinfo``: ``/etc/hosts``, search domains, DNS) does not report an
answer's TTL, so an answer is held for ``lifetime`` seconds (the operator's setting).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from skillrelay_common.ssrf import (
    PinnedTarget,
    TargetRefused,
    check_addresses,
    parse_target,
    resolve_addresses,
)

Resolve = Callable[[str, int], Awaitable[list[str]]]

# A bound on remembered URLs (each a few hundred bytes): past it the cache starts over.
MAX_ENTRIES = 10_000


class _Entry:
    __slots__ = ("expires_at", "refusal", "target")

    def __init__(self, target: PinnedTarget | None, refusal: str | None, expires_at: float) -> None:
        self.target = target
        self.refusal = refusal
        self.expires_at = expires_at


class TargetCache:
    def __init__(
        self,
        *,
        allow_private: bool,
        lifetime: float = 30.0,
        resolve: Resolve = resolve_addresses,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._allow_private = allow_private
        self._lifetime = lifetime
        self._resolve = resolve
        self._clock = clock
        self._by_url: dict[str, _Entry] = {}
        self._by_host: dict[tuple[str, int], tuple[list[str], float]] = {}
        self._resolving: dict[tuple[str, int], asyncio.Future[list[str]]] = {}
        self.resolutions = 0  # how many times a name was resolved (for tests and metrics)

    async def target(self, url: str) -> PinnedTarget:
        """The pinned target for ``url``; raises ``TargetRefused`` (message safe to show)."""
        entry = self._by_url.get(url)
        if entry is None or entry.expires_at <= self._clock():
            entry = await self._fresh(url)
        if entry.target is None:
            raise TargetRefused(entry.refusal or "refused")
        return entry.target

    def forget(self) -> None:
        self._by_url.clear()
        self._by_host.clear()

    async def _fresh(self, url: str) -> _Entry:
        try:
            parsed = parse_target(url)
        except TargetRefused as exc:
            return self._remember(url, _Entry(None, str(exc), float("inf")))  # a URL never changes
        try:
            addresses, expires_at = await self._addresses(parsed.host, parsed.port)
        except TargetRefused as exc:
            return self._remember(url, _Entry(None, str(exc), self._clock() + self._lifetime))
        try:
            check_addresses(parsed.host, addresses, allow_private=self._allow_private)
        except TargetRefused as exc:
            return self._remember(url, _Entry(None, str(exc), expires_at))
        target = PinnedTarget(parsed.scheme, parsed.host, addresses[0], parsed.port, parsed.path)
        return self._remember(url, _Entry(target, None, expires_at))

    async def _addresses(self, host: str, port: int) -> tuple[list[str], float]:
        """The name's answer and until when it holds: one resolution per name and lifetime, however
        many URLs point at it."""
        key = (host, port)
        known = self._by_host.get(key)
        if known is not None and known[1] > self._clock():
            return known
        pending = self._resolving.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._resolve(host, port))
            self._resolving[key] = pending
            self.resolutions += 1
            pending.add_done_callback(lambda _: self._resolving.pop(key, None))
        addresses = await asyncio.shield(pending)
        known = self._by_host.get(key)
        if known is None or known[1] <= self._clock() or known[0] is not addresses:
            known = (addresses, self._clock() + self._lifetime)
            if len(self._by_host) >= MAX_ENTRIES:
                self._by_host.clear()
            self._by_host[key] = known
        return known

    def _remember(self, url: str, entry: _Entry) -> _Entry:
        if len(self._by_url) >= MAX_ENTRIES:
            self._by_url.clear()
        self._by_url[url] = entry
        return entry
