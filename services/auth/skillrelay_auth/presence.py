"""Which edge replicas are alive, from their heartbeats: whose acknowledgement a revocation awaits."""

from __future__ import annotations

import time
from collections.abc import Callable

# An edge publishes a heartbeat every second; three missed beats and it no longer counts as live.
LIVENESS_WINDOW_SECONDS = 3.0


class EdgePresence:
    def __init__(
        self, *, window: float = LIVENESS_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window
        self._clock = clock
        self._last_seen: dict[str, float] = {}
        self._started = clock()

    def saw(self, instance_id: str) -> None:
        self._last_seen[instance_id] = self._clock()

    def forget(self, instance_id: str) -> None:
        self._last_seen.pop(instance_id, None)

    def live(self) -> set[str]:
        now = self._clock()
        for instance, seen in list(self._last_seen.items()):
            if now - seen > self._window:
                del self._last_seen[instance]
        return set(self._last_seen)

    def warming_up(self) -> float:
        """Seconds until this process has listened long enough to know every live replica (0 when it has).

        Right after start the set is incomplete: a revocation then waits one heartbeat period first."""
        return max(0.0, self._started + 1.2 - self._clock())
