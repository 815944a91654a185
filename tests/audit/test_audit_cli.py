"""``skillrelay audit tail``: prints records live and, restarted, resumes where it stopped."""

import asyncio
import io
import uuid

from skillrelay.audit_cli import consumer_name, tail
from skillrelay_common.audit import AuditRecorder
from skillrelay_common.messaging import Bus
from skillrelay_common.subjects import AUDIT_STREAM


class Output(io.StringIO):
    """Collects printed lines; ``wait_lines`` returns once ``count`` lines are there."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def write(self, text: str) -> int:
        self.changed.set()
        return super().write(text)

    async def wait_lines(self, count: int) -> list[str]:
        async def poll() -> list[str]:
            while len(self.getvalue().splitlines()) < count:
                self.changed.clear()
                await self.changed.wait()
            return self.getvalue().splitlines()

        return await asyncio.wait_for(poll(), 10)


async def test_tail_prints_live_records_and_resumes_after_restart(nats_url: str, bus: Bus) -> None:
    integration = f"mcpserver_t{uuid.uuid4().hex[:10]}"
    # The real AUDIT stream: a private one for audit.<id>.> would overlap it on the session's NATS.
    stream = AUDIT_STREAM
    audit = AuditRecorder(bus, "test", stream=stream)
    await audit.start()
    try:
        out = Output()
        stop = asyncio.Event()
        first = asyncio.create_task(tail(nats_url, integration, out=out, stop=stop, stream_name=stream.name))
        # The durable consumer exists once tail is reading; records from then on are printed.
        await _wait_for_consumer(bus, stream.name, consumer_name(integration))
        for index in range(3):
            audit.record("tool.call", integration, outcome="ok", data={"tool": f"t{index}"})
        lines = await out.wait_lines(3)
        assert [line.split("  ")[2] for line in lines] == ["tool.call"] * 3
        assert '"tool":"t0"' in lines[0] and '"tool":"t2"' in lines[2]
        stop.set()
        assert await asyncio.wait_for(first, 10) == 3

        # While nobody tails, two more records arrive; a new tail prints exactly those.
        audit.record("auth.failure", integration, outcome="denied", data={"reason": "bad token"})
        audit.record("session.opened", integration, outcome="ok")
        await asyncio.wait_for(audit.flush(), 10)
        again = io.StringIO()
        printed = await asyncio.wait_for(
            tail(nats_url, integration, out=again, count=2, json_lines=True, stream_name=stream.name), 10
        )
        assert printed == 2
        kinds = again.getvalue().splitlines()
        assert '"kind":"auth.failure"' in kinds[0] and '"kind":"session.opened"' in kinds[1]
    finally:
        await audit.stop()
        await bus.js.delete_consumer(stream.name, consumer_name(integration))


async def _wait_for_consumer(bus: Bus, stream: str, name: str) -> None:
    async def poll() -> None:
        while True:
            try:
                await bus.js.consumer_info(stream, name)
                return
            except Exception:
                await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), 10)
