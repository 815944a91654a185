"""An incremental reader of ``text/event-stream`` bodies: bytes in, each event's ``data`` out.

Only what an MCP server sends matters here: ``data`` lines (joined with newlines), ``id`` (kept for
nothing yet: the edge does not resume an upstream stream), comments and ``event``/``retry`` ignored.
"""

from __future__ import annotations

# One event may not grow past this (a runaway stream without a blank line must not eat memory).
MAX_EVENT_BYTES = 4 * 1024 * 1024


class EventTooLarge(Exception):
    pass


class SseReader:
    __slots__ = ("_buffer", "_carried_cr")

    def __init__(self) -> None:
        self._buffer = b""
        # A chunk that ended in CR: its LF may open the next chunk (one CRLF, not two line ends).
        self._carried_cr = False

    def feed(self, chunk: bytes) -> list[str]:
        """The ``data`` of every event completed by ``chunk`` (events without data are skipped)."""
        if self._carried_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._carried_cr = chunk.endswith(b"\r")
        self._buffer += chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        found: list[str] = []
        while True:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                break
            block, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
            data = _event_data(block)
            if data is not None:
                found.append(data)
        if len(self._buffer) > MAX_EVENT_BYTES:
            raise EventTooLarge(f"an event of the stream is larger than {MAX_EVENT_BYTES} bytes")
        return found


def _event_data(block: bytes) -> str | None:
    lines: list[str] = []
    for raw in block.split(b"\n"):
        if raw.startswith(b"data:"):
            value = raw[5:]
            lines.append((value[1:] if value.startswith(b" ") else value).decode("utf-8", "replace"))
    return "\n".join(lines) if lines else None
