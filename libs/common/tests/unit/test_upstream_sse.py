"""The SSE reader of upstream answers: events split anywhere across chunks, any line ending."""

from __future__ import annotations

import pytest

from skillrelay_common.upstream.sse import MAX_EVENT_BYTES, EventTooLarge, SseReader


def test_events_are_read_across_chunk_boundaries_and_line_endings() -> None:
    stream = b'event: message\r\ndata: {"a":1}\r\n\r\n: keep-alive\r\n\r\nid: 7\ndata: {"b":\ndata: 2}\n\n'
    for size in (1, 2, 3, 7, len(stream)):
        reader = SseReader()
        found: list[str] = []
        for start in range(0, len(stream), size):
            found += reader.feed(stream[start : start + size])
        assert found == ['{"a":1}', '{"b":\n2}'], size


def test_an_event_without_an_end_is_bounded() -> None:
    reader = SseReader()
    with pytest.raises(EventTooLarge):
        reader.feed(b"data: " + b"x" * (MAX_EVENT_BYTES + 1))
