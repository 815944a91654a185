"""The embedded nats-server and PostgreSQL stop when whoever started them is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from skillrelay_devstack.embedded import EmbeddedPostgres

STARTER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from skillrelay_devstack.embedded import EmbeddedNats, EmbeddedPostgres

    state = Path(sys.argv[1])
    nats = EmbeddedNats(store_dir=state / "nats")
    nats.start()
    postgres = EmbeddedPostgres(data_dir=state / "pg")
    postgres.start()
    print(nats.process.pid, postgres.process.pid, flush=True)
    time.sleep(600)
    """
)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit may wait for a reaper)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_servers_stop_when_their_starter_is_killed(tmp_path: Path) -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert starter.stdout is not None
    pids = [int(pid) for pid in starter.stdout.readline().split()]
    assert len(pids) == 2 and all(_running(pid) for pid in pids)
    starter.kill()  # SIGKILL: it cannot stop its servers itself
    starter.wait(5)
    deadline = time.monotonic() + 30
    try:
        while any(_running(pid) for pid in pids):
            assert time.monotonic() < deadline, "a server outlived its starter"
            time.sleep(0.1)
    finally:
        for pid in filter(_running, pids):
            os.kill(pid, signal.SIGKILL)
    # PostgreSQL shut down cleanly (fast shutdown removes its pid file): the next start just works.
    assert not (tmp_path / "pg" / "postmaster.pid").exists()
    again = EmbeddedPostgres(data_dir=tmp_path / "pg")
    again.start()
    again.stop()
