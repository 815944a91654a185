"""Token buckets per client address, in memory per auth replica: open dynamic client registration
(RFC 7591, which MCP clients rely on) must not let one address fill the database."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """``per_minute`` requests a minute per key, with bursts up to ``burst``. Remembers at most
    ``max_keys`` keys (the least recently seen are forgotten, i.e. given a full bucket again)."""

    def __init__(
        self,
        per_minute: int,
        *,
        burst: int | None = None,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else per_minute)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def acquire(self, key: str) -> float | None:
        """Take one token: None if allowed, else the seconds until one is available."""
        now = self._clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if allowed:
            return None
        return (1.0 - tokens) / self.rate if self.rate > 0 else 60.0
