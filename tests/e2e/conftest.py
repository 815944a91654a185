"""Whole-stack fixtures: every service as its own process, on the test session's NATS and a fresh
database; and a headless browser (Debian's Chromium driven by Playwright) for the dashboard's tests."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from skillrelay_common import bus_auth
from skillrelay_devstack.stack import Stack, running_stack

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def stack_env() -> dict[str, str]:
    """More environment for every service of ``stack``: none, unless a test module overrides this."""
    return {}


@pytest.fixture
def stack(
    nats_url: str,
    nats_system_url: str,
    nats_secrets: bus_auth.BusSecrets,
    database_url: str,
    tmp_path: Path,
    stack_env: dict[str, str],
) -> Iterator[Stack]:
    """One stack with one edge replica. Service logs land in ``tmp_path/logs`` (printed on failure)."""
    with running_stack(
        tmp_path / "state",
        nats_url=nats_url,
        database_url=database_url,
        nats_system_url=nats_system_url,
        nats_callout_seed=nats_secrets.callout_seed,
        log_dir=tmp_path / "logs",
        extra_env=stack_env,
    ) as running:
        yield running


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium, installed by ``scripts/ensure-chromium.sh`` if missing (skips if it cannot be)."""
    if not CHROMIUM.exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "ensure-chromium.sh")], check=False, timeout=900)
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed and scripts/ensure-chromium.sh could not install it")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()
