"""The worker SDK installs alone: ``pip install ./libs/worker`` into an empty virtual environment (from
PyPI) gives a worker that answers a call over a real nats-server, without the rest of Skillrelay."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from nats.aio.msg import Msg

from skillrelay_common.messaging import Bus
from skillrelay_worker.protocol import WorkerCall, WorkerEvent, WorkerHeartbeat, WorkerProgress, WorkerResult
from skillrelay_worker.subjects import worker_call_subject

ROOT = Path(__file__).resolve().parents[4]
# What a worker may pull in: the SDK and its three dependencies (nothing of the services' stack).
ALLOWED = {"skillrelay-worker", "msgspec", "nats-py", "structlog"}

WORKER = """
import sys
from typing import Any

from skillrelay_worker import Worker, WorkerContext

worker = Worker(sys.argv[2])


@worker.tool("add")
async def add(ctx: WorkerContext, args: dict[str, Any]) -> str:
    await ctx.report_progress(1, 2, "adding")
    return str(args["a"] + args["b"])


# The test session's service credentials are in the URL: a trusted worker names its owner itself.
worker.run(sys.argv[1], owner_id=sys.argv[3])
"""

_events = msgspec.json.Decoder(WorkerEvent)
OWNER = "user_standalone"


def _clean_env() -> dict[str, str]:
    """This process's environment without what would lead a child to the workspace's packages."""
    leaks = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
    return {key: value for key, value in os.environ.items() if key not in leaks}


@pytest.fixture(scope="module")
def standalone_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty virtual environment with only ``./libs/worker`` installed into it."""
    venv = tmp_path_factory.mktemp("standalone-worker") / "venv"
    python = venv / "bin" / "python"
    uv = ROOT / ".tools" / "bin" / "uv"
    env = _clean_env()
    if uv.exists():  # the project's uv: the same install as pip's, in a fraction of the time
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, venv], check=True, env=env)
        install = [uv, "pip", "install", "--quiet", "--python", python, ROOT / "libs" / "worker"]
    else:
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, env=env)
        install = [python, "-m", "pip", "install", "--quiet", ROOT / "libs" / "worker"]
    subprocess.run(install, check=True, env=env, cwd=venv.parent, timeout=300)
    yield python
    shutil.rmtree(venv, ignore_errors=True)


def _installed(python: Path) -> set[str]:
    listing = subprocess.run(
        [
            python,
            "-c",
            "import importlib.metadata as m, json; "
            "print(json.dumps([d.metadata['Name'] for d in m.distributions()]))",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=_clean_env(),
    ).stdout
    return {name.lower().replace("_", "-") for name in json.loads(listing)} - {"pip", "setuptools", "wheel"}


@pytest.mark.timeout(600)
def test_the_environment_holds_the_sdk_and_its_three_dependencies_only(standalone_python: Path) -> None:
    assert _installed(standalone_python) == ALLOWED
    imports = subprocess.run(
        [standalone_python, "-c", "import skillrelay_common"],
        capture_output=True,
        text=True,
        env=_clean_env(),
    )
    assert imports.returncode != 0 and "No module named 'skillrelay_common'" in imports.stderr


@pytest.fixture
def standalone_worker(
    standalone_python: Path, nats_url: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """The worker process, run by the environment's Python; its subject; its log."""
    subject = f"standalone.{uuid.uuid4().hex[:8]}"
    script = tmp_path / "adder.py"
    script.write_text(WORKER)
    log = tmp_path / "worker.log"
    with log.open("w") as log_file:
        worker = subprocess.Popen(
            [standalone_python, script, nats_url, subject, OWNER],
            env=_clean_env(),
            stderr=log_file,
            cwd=tmp_path,
        )
    yield worker, subject, log
    if worker.poll() is None:
        worker.kill()
        worker.wait(5)


@pytest.mark.timeout(600)
async def test_a_worker_from_the_environment_answers_a_call(
    standalone_worker: tuple[subprocess.Popen[bytes], str, Path], bus: Bus
) -> None:
    worker, subject, log = standalone_worker
    messages: asyncio.Queue[Msg] = asyncio.Queue()

    async def collect(msg: Msg) -> None:
        messages.put_nowait(msg)

    events_subject = f"standalone.events.{uuid.uuid4().hex}"
    await bus.nc.subscribe(events_subject, cb=collect)
    call = WorkerCall(
        call_id=uuid.uuid4().hex,
        ability_kind="tool",
        name="add",
        arguments={"a": 2, "b": 3},
        progress_token="p",
    )
    received: list[WorkerEvent] = []
    async with asyncio.timeout(60):
        while not received or not isinstance(received[-1], WorkerResult):
            if not received:
                assert worker.poll() is None, f"the worker exited: {log.read_text()}"
                payload = msgspec.json.encode(call)
                await bus.nc.publish(worker_call_subject(OWNER, subject), payload, reply=events_subject)
            reply = await messages.get()
            if not reply.data:
                # "No responders": the worker has not subscribed yet; call again.
                await asyncio.sleep(0.1)
                continue
            event = _events.decode(reply.data)
            if not isinstance(event, WorkerHeartbeat):  # sent only should the handler take a second
                received.append(event)
    progress, result = received
    assert isinstance(progress, WorkerProgress) and (progress.progress, progress.total) == (1, 2)
    assert isinstance(result, WorkerResult) and result.call_id == call.call_id
    assert result.result == {"content": [{"type": "text", "text": "5"}]}
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 20) == 0, log.read_text()  # drained, stopped on its own
