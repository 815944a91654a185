"""A service's start-up heap is frozen once it has started: full collections no longer walk it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from skillrelay_devstack.embedded import free_port

HTTP_SERVICE = textwrap.dedent(
    """
    import gc, sys
    from skillrelay_common.runtime import serve_http

    made_at_startup = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                made_at_startup.append({"made": "during start-up"})
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        # Frozen objects are in no generation: gc.get_objects() leaves them out.
        frozen = not any(o is made_at_startup[0] for o in gc.get_objects())
        body = f"{gc.get_freeze_count()} {frozen}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    serve_http(app, "127.0.0.1", int(sys.argv[1]))
    """
)

NATS_SERVICE = textwrap.dedent(
    """
    import gc, sys
    from pathlib import Path
    from skillrelay_common.runtime import run_until_signalled

    async def start():
        # The freeze follows at once, before the loop can see the test's signal.
        Path(sys.argv[1]).write_text("started")

    async def stop():
        Path(sys.argv[1]).write_text(str(gc.get_freeze_count()))

    run_until_signalled(start, stop)
    """
)


def test_an_http_service_freezes_what_its_start_up_made() -> None:
    port = free_port()
    service = subprocess.Popen([sys.executable, "-c", HTTP_SERVICE, str(port)])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the service did not start"
                time.sleep(0.05)
        count, frozen = answer.text.split()
        assert int(count) > 1000  # modules, classes, the app
        assert frozen == "True"  # the lifespan start-up ran before the freeze
    finally:
        service.send_signal(signal.SIGINT)
        service.wait(10)


def test_a_nats_only_service_freezes_after_its_start(tmp_path: Path) -> None:
    marker = tmp_path / "state"
    service = subprocess.Popen([sys.executable, "-c", NATS_SERVICE, str(marker)])
    deadline = time.monotonic() + 20
    while not (marker.exists() and marker.read_text() == "started"):
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    service.send_signal(signal.SIGTERM)
    assert service.wait(10) == 0
    assert int(marker.read_text()) > 1000
