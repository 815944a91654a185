"""Running a service process: uvicorn for HTTP services; NATS-only ones use ``run_until_signalled``, shared
with the worker SDK (a worker runs without this library), and imported from here by the services."""

from __future__ import annotations

import contextlib
import resource
import socket
from typing import Any

import uvicorn

from skillrelay_common.lean_http import LeanHttpToolsProtocol

# The process helpers live in the worker SDK; the services take them from here (compatibility re-export).
from skillrelay_worker.process import (
    PARENT_PID_VARIABLE,
    freeze_startup_heap,
    run_until_signalled,
    stop_with_parent,
)

__all__ = [
    "PARENT_PID_VARIABLE",
    "freeze_startup_heap",
    "run_until_signalled",
    "serve_http",
    "stop_with_parent",
]


class _Server(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)  # the app's lifespan start-up has run, the sockets listen
        if not self.should_exit:
            freeze_startup_heap()


def serve_http(
    app: Any, host: str, port: int, *, log_level: str = "warning", forwarded_allow_ips: str = ""
) -> None:
    """Serve an ASGI app until SIGINT/SIGTERM; uvicorn finishes in-flight requests, then runs the
    app's shutdown (where the service drains NATS). Behind a reverse proxy, ``forwarded_allow_ips``
    names it, so the client address (rate limits, logs) is the caller's, not the proxy's."""
    config = uvicorn_config(app, host, port, log_level=log_level, forwarded_allow_ips=forwarded_allow_ips)
    stop_with_parent()
    _Server(config).run()


def raise_open_files_limit() -> int:
    """Raise this process's soft open-files limit to its hard one; the new soft limit.

    A listening MCP client holds one connection, so one descriptor, on its edge replica for as long as
    it listens: the usual soft limit of 1,024 would cap a replica at about a thousand clients although
    the hard limit (a kernel or container setting: ``ulimits`` in docker-compose.yml) allows far more.
    See docs/scale.md."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def uvicorn_config(
    app: Any, host: str, port: int, *, log_level: str = "warning", forwarded_allow_ips: str = ""
) -> uvicorn.Config:
    """With no trusted proxy, X-Forwarded-* headers are not read at all (uvicorn would otherwise
    fall back to trusting 127.0.0.1, i.e. any local client)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        server_header=False,
        proxy_headers=bool(forwarded_allow_ips.strip()),
        forwarded_allow_ips=forwarded_allow_ips.strip() or None,
        loop="auto",
        http=LeanHttpToolsProtocol,
    )
