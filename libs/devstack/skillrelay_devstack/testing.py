"""pytest plugin: real ``nats-server`` and PostgreSQL started on free ports for the test session.

Loaded for every test run through ``-p skillrelay_devstack.testing``. Set ``SKILLRELAY_TEST_NATS_URL`` /
``SKILLRELAY_TEST_DATABASE_URL`` to use servers of your own instead (a database URL there must point at
a server where the user may create databases).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import pytest

from skillrelay_common import bus_auth
from skillrelay_common.messaging import Bus
from skillrelay_devstack.embedded import EmbeddedNats, EmbeddedPostgres
from skillrelay_worker import Worker, WorkerContext

if TYPE_CHECKING:
    from skillrelay_devstack.everything import Deployment
    from skillrelay_devstack.pet_api import PetApi
    from skillrelay_devstack.sessions import ManualClock
    from skillrelay_devstack.stack import Stack
    from skillrelay_sessions.app import SessionsRuntime


@pytest.fixture(scope="session")
def test_state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="skillrelay-test-"))
    os.chmod(path, 0o755)  # noqa: S103 (PostgreSQL runs as another user and must reach it)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def nats_secrets() -> bus_auth.BusSecrets:
    """The bus credentials of the test session's nats-server (services, system, callout issuer)."""
    return bus_auth.BusSecrets.generate()


@pytest.fixture(scope="session")
def nats_server(test_state_dir: Path, nats_secrets: bus_auth.BusSecrets) -> Iterator[EmbeddedNats | str]:
    """The session's nats-server, with the authorization ``make run`` configures (auth callout)."""
    external = os.environ.get("SKILLRELAY_TEST_NATS_URL")
    if external:
        yield external
        return
    server = EmbeddedNats(
        store_dir=test_state_dir / "nats", authorization=bus_auth.embedded_server_config(nats_secrets)
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_plain_url(nats_server: EmbeddedNats | str) -> str:
    """The session's nats-server without credentials (as a stranger or a worker would dial it)."""
    return bus_auth.without_user(nats_server if isinstance(nats_server, str) else nats_server.url)


@pytest.fixture(scope="session")
def nats_url(nats_server: EmbeddedNats | str, nats_secrets: bus_auth.BusSecrets) -> str:
    """The session's nats-server with the service credentials (what every service connects with)."""
    if isinstance(nats_server, str):
        return nats_server  # an external server: its URL carries whatever credentials it needs
    return bus_auth.service_url(nats_server.url, nats_secrets)


@pytest.fixture(scope="session")
def nats_system_url(nats_server: EmbeddedNats | str, nats_secrets: bus_auth.BusSecrets) -> str:
    """The session's nats-server as its system account (what the auth service disconnects with)."""
    if isinstance(nats_server, str):
        pytest.skip("needs the test session's own nats-server")
    return bus_auth.system_url(nats_server.url, nats_secrets)


@pytest.fixture(scope="session")
def postgres_admin_url(test_state_dir: Path) -> Iterator[str]:
    external = os.environ.get("SKILLRELAY_TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(data_dir=test_state_dir / "pg")
    server.start()
    yield server.url("postgres")
    server.stop()


async def _admin(postgres_admin_url: str, statement: str) -> None:
    conn = await asyncpg.connect(postgres_admin_url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def create_database(postgres_admin_url: str) -> str:
    """A new, empty database on the test server; returns its URL."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    await _admin(postgres_admin_url, f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_admin_url.rpartition("/")
    return f"{base}/{name}"


async def drop_database(postgres_admin_url: str, database_url: str) -> None:
    name = database_url.rpartition("/")[2]
    await _admin(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_database(postgres_admin_url: str) -> Iterator[str]:
    """``create_database`` for synchronous (e.g. module-scoped) fixtures, dropped after the block."""
    url = create_database_now(postgres_admin_url)
    try:
        yield url
    finally:
        asyncio.run(drop_database(postgres_admin_url, url))


def create_database_now(postgres_admin_url: str) -> str:
    """``create_database`` for synchronous (e.g. module-scoped) fixtures."""
    return asyncio.run(create_database(postgres_admin_url))


@pytest.fixture
async def database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A new, empty database for one test, dropped afterwards."""
    url = await create_database(postgres_admin_url)
    yield url
    await drop_database(postgres_admin_url, url)


@pytest.fixture(params=["memory", "connected"])
def answers_url(request: pytest.FixtureRequest) -> str | None:
    """Where a handler test serves a service's ``Answers`` (``skillrelay_devstack.answers.serving``):
    None for FastStream's in-memory ``TestNatsBroker``, else the session's real nats-server. A test
    taking it runs once each way."""
    if request.param == "memory":
        return None
    return str(request.getfixturevalue("nats_url"))


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    """A NATS connection for the test itself (to send requests, watch events)."""
    connection = await Bus.connect(nats_url, "test")
    yield connection
    await connection.close()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds (polled: it reads state other objects own); ``TimeoutError``
    after ``timeout`` seconds."""

    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 (state owned by others; bounded by wait_for)
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


@contextlib.contextmanager
def cyclic_garbage(prefix: str = "skillrelay_") -> Iterator[list[str]]:
    """Names the types of ``prefix`` modules whose objects the block left to the cyclic GC: freed only
    when a reference cycle is collected, not as soon as their last reference goes. A request that
    leaves a cycle behind keeps everything it references (its task, buffers, closures) alive until a
    collection, whose cost grows with it. Automatic collections are off during the block."""
    gc.collect()
    gc.disable()
    names: list[str] = []
    try:
        yield names
    finally:
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            found = {f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage}
            names.extend(sorted(name for name in found if name.startswith(prefix)))
            gc.garbage.clear()
        finally:
            gc.set_debug(0)
            gc.enable()


def gated_counter_worker(subject: str) -> tuple[Worker, asyncio.Event]:
    """A worker whose ``count`` tool reports progress 1 and 2 of 3, waits for the returned event, then
    reports 3 and answers "counted" (a call that is surely running while a test acts on it)."""
    gate = asyncio.Event()
    worker = Worker(subject, shutdown_grace=1.0)

    @worker.tool("count")
    async def count(ctx: WorkerContext, args: dict[str, Any]) -> str:
        for step in (1, 2):
            await ctx.report_progress(step, 3)
        await gate.wait()
        await ctx.report_progress(3, 3)
        return "counted"

    return worker, gate


SESSIONS_TTL = 1000  # seconds: how long a session of the ``sessions`` fixture's service lives unused


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test says so (``clock.advance``)."""
    from skillrelay_devstack.sessions import ManualClock

    return ManualClock()


@pytest.fixture
async def sessions(nats_url: str, database_url: str, clock: ManualClock) -> AsyncIterator[SessionsRuntime]:
    """The sessions service in-process on the session's NATS and a fresh database, on ``clock``, its
    sessions living ``SESSIONS_TTL`` seconds."""
    from skillrelay_devstack.sessions import running_sessions

    async with running_sessions(nats_url, database_url, clock, ttl_seconds=SESSIONS_TTL) as runtime:
        yield runtime


@pytest.fixture
def pet_api() -> Iterator[PetApi]:
    """The small pet service with an OpenAPI document (``skillrelay_devstack.pet_api``), on a free port."""
    from skillrelay_devstack.pet_api import PetApi

    api = PetApi().start()
    yield api
    api.stop()


StackStarter = Callable[..., contextlib.AbstractContextManager["Stack"]]


T = TypeVar("T")


def _starter(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_admin_url: str,
    launch: Callable[..., contextlib.AbstractContextManager[T]],
    **servers: str | None,
) -> Callable[..., contextlib.AbstractContextManager[T]]:
    """``start(name, edge_replicas=…)``: ``launch`` with its own folder under pytest's temporary one and
    a fresh database, on ``servers`` (the session's NATS URLs)."""

    @contextlib.contextmanager
    def start(name: str, *, edge_replicas: int = 1) -> Iterator[T]:
        root = tmp_path_factory.mktemp(name)
        with (
            fresh_database(postgres_admin_url) as database_url,
            launch(
                state_dir=root / "state",
                database_url=database_url,
                edge_replicas=edge_replicas,
                log_dir=root / "logs",
                **servers,
            ) as running,
        ):
            yield running

    return start


@pytest.fixture(scope="session")
def start_stack(
    nats_url: str, postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> StackStarter:
    """Starts the whole stack (every service a process) on the session's NATS in a fresh database, for
    module-scoped fixtures: ``with start_stack("name", edge_replicas=2) as stack: …``."""
    from skillrelay_devstack.stack import running_stack  # the launcher, only where a test needs it

    return _starter(tmp_path_factory, postgres_admin_url, running_stack, nats_url=nats_url)


EverythingStarter = Callable[..., contextlib.AbstractContextManager["Deployment"]]


@pytest.fixture(scope="session")
def start_everything(
    nats_url: str,
    nats_system_url: str,
    nats_secrets: bus_auth.BusSecrets,
    postgres_admin_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> EverythingStarter:
    """Starts the everything deployment (whole stack + example worker) on the session's servers in a
    fresh database: ``with start_everything("name", edge_replicas=2) as deployment: …``."""
    # Imported here: the deployment pulls in the stack launcher and the example, which most tests
    # never need, and this plugin is loaded by every test run.
    from skillrelay_devstack.everything import everything_deployment

    return _starter(
        tmp_path_factory,
        postgres_admin_url,
        everything_deployment,
        nats_url=nats_url,
        nats_system_url=nats_system_url,
        nats_callout_seed=nats_secrets.callout_seed,
    )
