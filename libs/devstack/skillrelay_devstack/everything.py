"""The whole everything example running: the Skillrelay stack, the worker process, the registered
integration. Used by the conformance, MCP SDK client and Inspector CLI tests (and handy by hand)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors

from everything_worker.register import Registration, register
from skillrelay_common.messaging import encode
from skillrelay_devstack.stack import ServiceProcess, Stack, running_stack
from skillrelay_worker.protocol import WorkerCall
from skillrelay_worker.subjects import worker_call_subject


@dataclass
class Deployment:
    stack: Stack
    worker: ServiceProcess
    subject: str
    registration: Registration

    def endpoint(self, replica: int = 0) -> str:
        """The MCP endpoint as served by edge replica ``replica``."""
        path = self.registration.endpoint.split("://", 1)[1].split("/", 1)[1]
        return f"{self.stack.edge_urls[replica]}/{path}"


def start_worker(
    stack: Stack, registration: Registration, subject: str, log_dir: Path | None, timeout: float = 30.0
) -> ServiceProcess:
    """The worker as its own process, connected with the owner's worker credential (no service
    credentials: it may serve that owner's worker subjects and nothing else); it may also change its
    own skillset (the suite's trigger tools)."""
    env = dict(
        stack.service_env(),
        SKILLRELAY_WORKER_SUBJECT=subject,
        SKILLRELAY_NATS_URL=stack.nats_public_url,
        SKILLRELAY_WORKER_CREDENTIAL=registration.worker_credential,
        SKILLRELAY_EVERYTHING_REGISTRY_URL=stack.registry_url,
        SKILLRELAY_EVERYTHING_API_KEY=registration.api_key,
        SKILLRELAY_EVERYTHING_SKILLSET_ID=registration.skillset_id,
    )
    log = open(log_dir / f"worker-{subject}.log", "ab") if log_dir else None  # noqa: SIM115 (kept by the process)
    worker = ServiceProcess(f"worker-{subject}", "everything_worker", env, None, log)
    worker.start()
    wait_for_worker(stack.nats_url or "", registration.user_id, subject, worker, timeout)
    return worker


def wait_for_worker(
    nats_url: str, owner_id: str, subject: str, worker: ServiceProcess, timeout: float
) -> None:
    """Until a worker of ``subject`` answers a call (an unknown tool: it answers with an error)."""

    async def probe() -> None:
        nc = await nats.connect(nats_url)
        deadline = time.monotonic() + timeout
        call = WorkerCall(call_id=uuid.uuid4().hex, ability_kind="tool", name="__readiness_probe__")
        try:
            while True:
                if not worker.alive():
                    raise RuntimeError(f"worker {subject} exited during start (see its log)")
                with contextlib.suppress(nats.errors.NoRespondersError, nats.errors.TimeoutError):
                    await nc.request(worker_call_subject(owner_id, subject), encode(call), timeout=1.0)
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"worker {subject} not ready in {timeout}s")
                await asyncio.sleep(0.1)
        finally:
            await nc.close()

    asyncio.run(probe())


@contextlib.contextmanager
def everything_deployment(
    *,
    state_dir: Path,
    nats_url: str,
    database_url: str,
    nats_system_url: str | None = None,
    nats_callout_seed: str | None = None,
    edge_replicas: int = 1,
    log_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Deployment]:
    """Start the stack on free ports, register the skillset, start the worker with the owner's worker
    credential; stop it all afterwards. ``nats_system_url`` and ``nats_callout_seed`` let the stack's
    auth service answer the server's auth callout (the worker connects through it)."""
    with running_stack(
        state_dir,
        nats_url=nats_url,
        database_url=database_url,
        nats_system_url=nats_system_url,
        nats_callout_seed=nats_callout_seed,
        edge_replicas=edge_replicas,
        log_dir=log_dir,
        extra_env=extra_env,
    ) as stack:
        worker: ServiceProcess | None = None
        try:
            subject = f"everything-{uuid.uuid4().hex[:8]}"
            registration = register(stack.registry_url, stack.admin_token, subject=subject)
            worker = start_worker(stack, registration, subject, log_dir)
            yield Deployment(stack=stack, worker=worker, subject=subject, registration=registration)
        finally:
            if worker is not None:
                worker.stop()


def log_tail(log_dir: Path, lines: int = 60) -> str:
    """The end of every service log, for assertion messages."""
    parts = []
    for path in sorted(log_dir.glob("*.log")):
        content = path.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"--- {path.name}\n" + "\n".join(content))
    return "\n".join(parts) if parts else os.devnull
