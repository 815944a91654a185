"""The benchmarks' harness: a state folder, the servers (embedded NATS and PostgreSQL, the sessions
service, the benchmark control plane, the edge) each in its own process with its log, CPU pinning, the
interleaved load rounds of ``make bench`` and ``make bench-peers`` and their report table. Every
benchmark module starts and measures through these, so each says only what it measures."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from skillrelay_devstack.embedded import EmbeddedNats, EmbeddedPostgres

PYTHON = sys.executable
TEXT = "hello benchmark"


@dataclass
class Target:
    name: str
    port: int
    path: str
    headers: dict[str, str]
    body: str
    rounds: list[dict[str, float]] = field(default_factory=list)
    concurrency: int | None = None  # None: the run's --concurrency

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.rounds) if self.rounds else 0.0

    @property
    def errors(self) -> int:
        return int(sum(r["errors"] for r in self.rounds))


def split_cpus() -> tuple[set[int] | None, set[int] | None]:
    try:
        available = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(available) < 2:
        return None, None
    return {available[0]}, {available[1]}


def pin(pid: int, cpus: set[int] | None) -> None:
    if cpus is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, cpus)


def pin_all(pids: list[int], cpus: set[int]) -> None:
    """Every thread of ``pids``: affinity set on a process id covers only its main thread."""
    for pid in pids:
        for thread in _threads(pid):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(thread, cpus)


@contextlib.contextmanager
def affinity(cpus: set[int] | None) -> Iterator[None]:
    """Run this process (and so what it starts) on ``cpus`` for the duration of the block."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _threads(pid: int) -> list[int]:
    try:
        return [int(name) for name in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return [pid]


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parent = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(name))
    tree: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as handle:
        process = subprocess.Popen(
            args, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # SIGINT: lets a profiler (BENCH_PROFILE_EDGE) write out
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def measure_target(target: Target, args: argparse.Namespace, cpus: set[int] | None) -> None:
    spec = {
        "host": "127.0.0.1",
        "port": target.port,
        "path": target.path,
        "headers": target.headers,
        "body": target.body,
        "expect": TEXT,
        "concurrency": target.concurrency or args.concurrency,
        "duration": args.duration,
        "warmup": args.warmup,
    }
    servers = process_tree(os.getpid())[1:]
    cpu_before = _cpu_seconds(servers)
    process = subprocess.Popen([PYTHON, "-m", "benchmarks.load", json.dumps(spec)], stdout=subprocess.PIPE)
    pin(process.pid, cpus)
    out, _ = process.communicate(timeout=args.duration + args.warmup + 120)
    data = json.loads(out.decode().strip().splitlines()[-1])
    # CPU of every server process (the whole server core's work) per call, warm-up included: a figure
    # that moves far less with the shared machine's load than req/s does.
    calls = data["requests"] + data.get("warmup_requests", 0)
    data["server_cpu_us"] = (_cpu_seconds(servers) - cpu_before) / calls * 1e6 if calls else 0.0
    target.rounds.append(data)
    print(
        f"  {target.name:<44} {data['rps']:>7.0f} req/s  p50 {data['p50_ms']:6.2f} ms"
        f"  p99 {data['p99_ms']:7.2f} ms  {data['server_cpu_us']:5.0f} µs server CPU/call"
        f"  ({data['requests']} requests, {data['errors']} errors"
        f"{' ' + str(data.get('error_statuses')) if data['errors'] else ''})",
        flush=True,
    )


def _cpu_seconds(pids: list[int]) -> float:
    """User + system time of ``pids`` (their threads included) from /proc."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def bench_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLRELAY_")}
    env["SKILLRELAY_LOG_LEVEL"] = "warning"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path.cwd()), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def state_folder(state: Path) -> Path:
    """Make ``state`` readable to an embedded PostgreSQL (it may run as another user) and give it a
    ``logs`` folder, which is returned."""
    os.chmod(state, 0o755)  # noqa: S103 (embedded PostgreSQL may run as another user)
    logs = state / "logs"
    logs.mkdir()
    return logs


def start_sessions_service(
    stack: contextlib.ExitStack, state: Path, logs: Path, database: str
) -> tuple[str, dict[str, str]]:
    """Embedded NATS and PostgreSQL (database ``database``) and the real sessions service on them, each
    stopped when ``stack`` closes. Returns NATS's URL and the environment every other server starts with."""
    nats = EmbeddedNats(store_dir=state / "nats")
    nats.start()
    stack.callback(nats.stop)
    postgres = EmbeddedPostgres(data_dir=state / "pg")
    postgres.start()
    stack.callback(postgres.stop)
    database_url = postgres.create_database(database)
    env = bench_env(
        SKILLRELAY_NATS_URL=nats.url, SKILLRELAY_STATE_DIR=str(state), SKILLRELAY_HOST="127.0.0.1"
    )
    sessions_env = {**env, "SKILLRELAY_DATABASE_URL": database_url}
    stack.enter_context(running([PYTHON, "-m", "skillrelay_sessions"], sessions_env, logs / "sessions.log"))
    return nats.url, env


def start_control_plane(
    stack: contextlib.ExitStack,
    env: dict[str, str],
    logs: Path,
    nats_url: str,
    integration_id: str,
    token: str,
    *upstream_urls: str,
) -> None:
    """``benchmarks.control_plane``: the registry and auth answers for one integration and its token."""
    command = [PYTHON, "-m", "benchmarks.control_plane", nats_url, integration_id, token, *upstream_urls]
    stack.enter_context(running(command, env, logs / "control.log"))


def edge_env(env: dict[str, str], port: int) -> dict[str, str]:
    return {
        **env,
        "SKILLRELAY_EDGE_PORT": str(port),
        "SKILLRELAY_EDGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }


def add_round_options(parser: argparse.ArgumentParser, duration: float, warmup: float) -> None:
    """The options of interleaved rounds (``run_rounds``), with this benchmark's default lengths."""
    per_target = "per target and round"
    parser.add_argument("--duration", type=float, default=duration, help=f"seconds measured {per_target}")
    parser.add_argument("--warmup", type=float, default=warmup, help=f"seconds of warm-up {per_target}")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections")


def print_plan(args: argparse.Namespace, server_cpus: set[int] | None, load_cpus: set[int] | None) -> None:
    """Where servers and load run, and how long each target is measured."""
    where = (
        f"servers on CPU {sorted(server_cpus)}, load on CPU {sorted(load_cpus or ())}"
        if server_cpus
        else "no pinning"
    )
    print(
        f"{where}; {args.concurrency} connections; {args.rounds} rounds of "
        f"{args.warmup:g} s warm-up + {args.duration:g} s per target",
        flush=True,
    )


@dataclass
class Run:
    """One run of interleaved rounds: where servers and load run, the static token every target takes,
    the state folder with its logs, and the servers started on ``stack`` (stopped with the run)."""

    stack: contextlib.ExitStack
    state: Path
    logs: Path
    token: str
    server_cpus: set[int] | None
    load_cpus: set[int] | None

    def rounds(self, targets: list[Target], args: argparse.Namespace) -> None:
        run_rounds(targets, args, self.server_cpus, self.load_cpus)


@contextlib.contextmanager
def bench_run(args: argparse.Namespace, prefix: str) -> Iterator[Run]:
    """A run: the CPUs split (its plan printed), a token, a temporary state folder, an exit stack."""
    server_cpus, load_cpus = split_cpus()
    token = "bench-" + secrets.token_urlsafe(24)
    print_plan(args, server_cpus, load_cpus)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, contextlib.ExitStack() as stack:
        state = Path(tmp)
        yield Run(stack, state, state_folder(state), token, server_cpus, load_cpus)


def run_rounds(
    targets: list[Target], args: argparse.Namespace, server_cpus: set[int] | None, load_cpus: set[int] | None
) -> None:
    """Once every server runs: whatever they started since (threads, backends) onto the server CPU too;
    then ``args.rounds`` interleaved rounds over ``targets``."""
    if server_cpus is not None:
        pin_all(process_tree(os.getpid())[1:], server_cpus)
    for number in range(1, args.rounds + 1):
        print(f"round {number}", flush=True)
        for target in targets:
            measure_target(target, args, load_cpus)


def print_medians(targets: list[Target], extra: tuple[str, Callable[[Target], str]] | None = None) -> None:
    """The median of the rounds of each target as a Markdown table (``extra``: one more column)."""
    heading, more = (f" {extra[0]} |", "---:|") if extra else ("", "")
    print("\nmedian of the rounds:\n")
    print(f"| target | req/s | p50 ms | p99 ms | server CPU µs/call |{heading}")
    print(f"|---|---:|---:|---:|---:|{more}")
    for target in targets:
        cell = f" {extra[1](target)} |" if extra else ""
        print(
            f"| {target.name} | {target.median('rps'):.0f} | {target.median('p50_ms'):.2f} | "
            f"{target.median('p99_ms'):.2f} | {target.median('server_cpu_us'):.0f} |{cell}"
        )


def print_errors(targets: list[Target]) -> None:
    errors = sum(target.errors for target in targets)
    if errors:
        print(f"\n{errors} requests failed: the figures above are not trustworthy")


@asynccontextmanager
async def infrastructure(database: str | None = None) -> AsyncIterator[tuple[str, str]]:
    """NATS and PostgreSQL URLs: ``SKILLRELAY_NATS_URL`` / ``SKILLRELAY_DATABASE_URL`` when set, else an
    embedded server (a new database, ``database`` or a random name) that ends with the block."""
    nats_url, database_url = os.environ.get("SKILLRELAY_NATS_URL"), os.environ.get("SKILLRELAY_DATABASE_URL")
    folder = Path(tempfile.mkdtemp(prefix="skillrelay-bench-"))
    os.chmod(folder, 0o755)  # noqa: S103 (PostgreSQL may run as another user)
    nats = postgres = None
    try:
        if not nats_url:
            nats = EmbeddedNats(store_dir=folder / "nats")
            nats_url = nats.start()
        if not database_url:
            postgres = EmbeddedPostgres(data_dir=folder / "pg")
            postgres.start()
            database_url = postgres.create_database(database or f"bench_{uuid.uuid4().hex[:8]}")
        yield nats_url, database_url
    finally:
        if nats is not None:
            nats.stop()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)
