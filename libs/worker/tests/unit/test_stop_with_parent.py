"""A process started by a launcher (a service, a worker) stops (gracefully) when the launcher is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from skillrelay_worker.process import run_until_signalled

    async def start():
        Path(sys.argv[1]).write_text("started")

    async def stop():
        Path(sys.argv[1]).write_text("stopped")

    run_until_signalled(start, stop)
    """
)

LAUNCHER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    env = {**os.environ, "SKILLRELAY_PARENT_PID": str(os.getpid())}
    command = [sys.executable, "-c", sys.argv[1], sys.argv[2]]
    child = subprocess.Popen(command, env=env, start_new_session=True)
    print(child.pid, flush=True)
    time.sleep(600)
    """
)


def test_a_service_stops_when_its_launcher_is_killed(tmp_path: Path) -> None:
    marker = tmp_path / "state"
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, CHILD, str(marker)], stdout=subprocess.PIPE, text=True
    )
    assert launcher.stdout is not None
    child_pid = int(launcher.stdout.readline())
    deadline = time.monotonic() + 20
    while not (marker.exists() and marker.read_text() == "started"):
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    launcher.kill()  # SIGKILL: the launcher cannot stop its child itself
    launcher.wait(5)
    while _alive(child_pid):
        if time.monotonic() > deadline:
            os.kill(child_pid, signal.SIGKILL)
            raise AssertionError("the service outlived its launcher")
        time.sleep(0.05)
    assert marker.read_text() == "stopped"  # it shut down through its own stop(), not killed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    status = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}").exists() else "X"
    return status not in {"Z", "X"}
