"""uvicorn's httptools protocol with less kept per connection: a server holding tens of thousands of
idle connections (the edge's listening streams) pays each byte tens of thousands of times.

uvicorn gives every connection a ``deque`` for pipelined requests (about 700 bytes with its first
block) although HTTP/1.1 clients all but never pipeline; here it is made only when one does. The
protocol is otherwise uvicorn's own. See docs/scale.md for what a connection costs."""

from __future__ import annotations

from collections import deque
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _RarePipeline:
    """The few operations uvicorn uses on its pipeline deque, with the deque made on first use."""

    __slots__ = ("_queue",)

    def __init__(self) -> None:
        self._queue: deque[Any] | None = None

    def appendleft(self, item: Any) -> None:
        if self._queue is None:
            self._queue = deque()
        self._queue.appendleft(item)

    def pop(self) -> Any:
        if not self._queue:
            raise IndexError("pop from an empty pipeline")
        item = self._queue.pop()
        if not self._queue:
            self._queue = None
        return item

    def __bool__(self) -> bool:
        return bool(self._queue)

    def __len__(self) -> int:
        return len(self._queue) if self._queue else 0


class LeanHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pipeline = _RarePipeline()  # type: ignore[assignment]
