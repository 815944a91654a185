"""pytest plugin: real ``nats-server`` and PostgreSQL started on free ports for the test session.

Loaded for every test run through ``-p skillrelay_common.testing``. Set ``SKILLRELAY_TEST_NATS_URL`` /
``SKILLRELAY_TEST_DATABASE_URL`` to use servers of your own instead (a database URL there must point at
a server where the user may create databases).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from skillrelay_common.embedded import EmbeddedNats, EmbeddedPostgres
from skillrelay_common.messaging import Bus


@pytest.fixture(scope="session")
def test_state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="skillrelay-test-"))
    os.chmod(path, 0o755)  # noqa: S103 (PostgreSQL runs as another user and must reach it)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def nats_server(test_state_dir: Path) -> Iterator[EmbeddedNats | str]:
    external = os.environ.get("SKILLRELAY_TEST_NATS_URL")
    if external:
        yield external
        return
    server = EmbeddedNats(store_dir=test_state_dir / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: EmbeddedNats | str) -> str:
    return nats_server if isinstance(nats_server, str) else nats_server.url


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


@pytest.fixture
async def database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A new, empty database for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(postgres_admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = postgres_admin_url.rpartition("/")
    yield f"{base}/{name}"
    conn = await asyncpg.connect(postgres_admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    """A NATS connection for the test itself (to send requests, watch events)."""
    connection = await Bus.connect(nats_url, "test")
    yield connection
    await connection.close()
