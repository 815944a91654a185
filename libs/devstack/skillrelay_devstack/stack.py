"""Starts the whole Skillrelay topology as separate processes: embedded NATS and PostgreSQL (unless
external URLs are given), then sessions, auth, registry and the edge replicas. Used by ``make run``
and by the whole-stack tests."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from skillrelay_common import bus_auth
from skillrelay_common.runtime import PARENT_PID_VARIABLE
from skillrelay_common.settings import Settings
from skillrelay_devstack.embedded import EmbeddedNats, EmbeddedPostgres, free_port, open_private_log


@dataclass
class ServiceProcess:
    name: str
    module: str
    env: dict[str, str]
    ready_url: str | None
    log: IO[bytes] | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT if self.log else None,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(5)


@dataclass
class Stack:
    """One running topology. ``edge_ports`` gives one edge replica per port."""

    state_dir: Path
    host: str = "127.0.0.1"
    registry_port: int = 8000
    auth_port: int = 8090
    edge_ports: tuple[int, ...] = (8080,)
    nats_url: str | None = None
    # For the auth service alone (auth callout); set for the embedded server, else from the environment.
    nats_system_url: str | None = None
    nats_callout_seed: str | None = None
    database_url: str | None = None
    log_dir: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    nats: EmbeddedNats | None = field(default=None, init=False)
    postgres: EmbeddedPostgres | None = field(default=None, init=False)
    services: list[ServiceProcess] = field(default_factory=list, init=False)
    admin_token: str = field(default="", init=False)
    # The embedded nats-server's credentials (None with an external server: its URL carries them).
    bus_secrets: bus_auth.BusSecrets | None = field(default=None, init=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Stack:
        return cls(
            state_dir=settings.state_dir,
            host=settings.http.host,
            registry_port=settings.http.registry_port,
            auth_port=settings.http.auth_port,
            edge_ports=(settings.http.edge_port,),
            nats_url=settings.nats.url,
            database_url=settings.database.url,
        )

    @classmethod
    def on_free_ports(
        cls,
        state_dir: Path,
        edge_replicas: int = 1,
        *,
        log_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Stack:
        """A stack for tests: free ports, embedded servers, logs in ``log_dir``."""
        return cls(
            state_dir=state_dir,
            registry_port=free_port(),
            auth_port=free_port(),
            edge_ports=tuple(free_port() for _ in range(edge_replicas)),
            log_dir=log_dir,
            extra_env=extra_env or {},
        )

    @property
    def public_host(self) -> str:
        return "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host  # noqa: S104

    @property
    def registry_url(self) -> str:
        return f"http://{self.public_host}:{self.registry_port}"

    @property
    def auth_url(self) -> str:
        return f"http://{self.public_host}:{self.auth_port}"

    @property
    def edge_urls(self) -> list[str]:
        return [f"http://{self.public_host}:{port}" for port in self.edge_ports]

    def _secret(self, name: str, env_name: str) -> str:
        """A generated secret kept in the state folder, unless the environment sets one."""
        from_env = os.environ.get(env_name)
        if from_env:
            return from_env
        path = self.state_dir / name
        if path.exists():
            path.chmod(0o600)  # a file written by an older version may be world-readable
            return path.read_text().strip()
        value = secrets.token_urlsafe(32)
        # Created owner-only in one step: never readable by others, not even for a moment.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(value + "\n")
        return value

    def _make_state_dir(self) -> None:
        """The state folder holds the admin token, the secret key, the database and the logs: owner
        only (0700), whatever the umask, also when it already existed."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.state_dir.chmod(0o700)

    def start_infrastructure(self) -> None:
        self._make_state_dir()
        if not self.nats_url:
            # Kept in the state folder: a restart keeps the credentials workers were given.
            self.bus_secrets = bus_auth.BusSecrets.load_or_create(self.state_dir / "nats-auth.json")
            self.nats = EmbeddedNats(
                store_dir=self.state_dir / "nats",
                log_file=self.state_dir / "nats.log",
                authorization=bus_auth.embedded_server_config(self.bus_secrets),
            )
            self.nats_url = bus_auth.service_url(self.nats.start(), self.bus_secrets)
            self.nats_system_url = bus_auth.system_url(self.nats.url, self.bus_secrets)
            self.nats_callout_seed = self.bus_secrets.callout_seed
        if not self.database_url:
            self.postgres = EmbeddedPostgres(data_dir=self.state_dir / "postgres")
            self.postgres.start()
            self.database_url = self.postgres.create_database("skillrelay")

    def service_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLRELAY_")}
        env.update(
            {
                "SKILLRELAY_STATE_DIR": str(self.state_dir),
                "SKILLRELAY_HOST": self.host,
                "SKILLRELAY_NATS_URL": self.nats_url or "",
                "SKILLRELAY_DATABASE_URL": self.database_url or "",
                "SKILLRELAY_ADMIN_TOKEN": self.admin_token,
                "SKILLRELAY_SECRET_KEY": self._secret("secret-key", "SKILLRELAY_SECRET_KEY"),
                "SKILLRELAY_REGISTRY_PORT": str(self.registry_port),
                "SKILLRELAY_AUTH_PORT": str(self.auth_port),
                "SKILLRELAY_EDGE_PORT": str(self.edge_ports[0]),
                "SKILLRELAY_REGISTRY_PUBLIC_URL": os.environ.get(
                    "SKILLRELAY_REGISTRY_PUBLIC_URL", self.registry_url
                ),
                "SKILLRELAY_AUTH_PUBLIC_URL": os.environ.get("SKILLRELAY_AUTH_PUBLIC_URL", self.auth_url),
                "SKILLRELAY_EDGE_PUBLIC_URL": os.environ.get("SKILLRELAY_EDGE_PUBLIC_URL", self.edge_urls[0]),
                # The services stop when this process is gone, even if it could not stop them (killed).
                PARENT_PID_VARIABLE: str(os.getpid()),
            }
        )
        for name in (
            "SKILLRELAY_LOG_LEVEL",
            "SKILLRELAY_LOG_JSON",
            "SKILLRELAY_SESSION_TTL",
            "SKILLRELAY_ALLOW_PRIVATE_HTTP_TARGETS",
            "SKILLRELAY_FORWARDED_ALLOW_IPS",
            "SKILLRELAY_OAUTH_REGISTRATIONS_PER_MINUTE",
            "SKILLRELAY_MAX_BODY_BYTES",
            "SKILLRELAY_NATS_REQUEST_TIMEOUT",
            "SKILLRELAY_DATABASE_POOL_SIZE",
            "SKILLRELAY_AUDIT_MAX_AGE",
            "SKILLRELAY_AUDIT_MAX_BYTES",
            "SKILLRELAY_OTEL_ENABLED",
            "SKILLRELAY_SOURCE_REFRESH_SECONDS",
        ):
            if name in os.environ:
                env[name] = os.environ[name]
        env.update(self.extra_env)
        return env

    def auth_env(self, base: dict[str, str]) -> dict[str, str]:
        """The auth service alone also gets the bus's system account and the key that signs worker
        identities (it answers the nats-server's auth callout)."""
        env = dict(base)
        system_url = self.nats_system_url or os.environ.get("SKILLRELAY_NATS_SYSTEM_URL")
        callout_seed = self.nats_callout_seed or os.environ.get("SKILLRELAY_NATS_CALLOUT_SEED")
        if system_url:
            env["SKILLRELAY_NATS_SYSTEM_URL"] = system_url
        if callout_seed:
            env["SKILLRELAY_NATS_CALLOUT_SEED"] = callout_seed
        return env

    @property
    def nats_public_url(self) -> str:
        """Where workers dial NATS (no credentials: each worker brings its own)."""
        return bus_auth.without_user(self.nats_url or "")

    def _log_file(self, name: str) -> IO[bytes] | None:
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return open_private_log(self.log_dir / f"{name}.log")

    def start(self, timeout: float = 60.0) -> None:
        self._make_state_dir()
        self.admin_token = self.admin_token or self._secret("admin-token", "SKILLRELAY_ADMIN_TOKEN")
        try:
            self.start_infrastructure()
        except BaseException:
            self.stop()
            raise
        base = self.service_env()
        self.services = [
            ServiceProcess("sessions", "skillrelay_sessions", base, None, self._log_file("sessions")),
            ServiceProcess(
                "auth",
                "skillrelay_auth",
                self.auth_env(base),
                f"{self.auth_url}/ready",
                self._log_file("auth"),
            ),
            ServiceProcess(
                "registry",
                "skillrelay_registry",
                base,
                f"{self.registry_url}/ready",
                self._log_file("registry"),
            ),
        ]
        for index, (port, url) in enumerate(zip(self.edge_ports, self.edge_urls, strict=True)):
            env = dict(base, SKILLRELAY_EDGE_PORT=str(port), SKILLRELAY_INSTANCE_ID=f"edge-{index + 1}")
            self.services.append(
                ServiceProcess(
                    f"edge-{index + 1}",
                    "skillrelay_edge",
                    env,
                    f"{url}/ready",
                    self._log_file(f"edge-{index + 1}"),
                )
            )
        for service in self.services:
            service.start()
        try:
            self.wait_ready(timeout)
        except Exception:
            self.stop()
            raise

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.services)
        with httpx.Client(timeout=1.0) as client:
            while pending:
                for service in list(pending):
                    if not service.alive():
                        raise RuntimeError(f"{service.name} exited during start (see its log)")
                    if service.ready_url is None:
                        if self._nats_ping(f"{service.name}.service.ping"):
                            pending.remove(service)
                        continue
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(service.ready_url).status_code == 200:
                            pending.remove(service)
                if pending and time.monotonic() > deadline:
                    raise TimeoutError("not ready in time: " + ", ".join(s.name for s in pending))
                if pending:
                    time.sleep(0.1)

    def _nats_ping(self, subject: str) -> bool:
        import asyncio

        import nats

        async def ping() -> bool:
            try:
                nc = await nats.connect(self.nats_url or "", connect_timeout=1, max_reconnect_attempts=0)
            except Exception:
                return False
            try:
                await nc.request(subject, b'{"kind":"Ping"}', timeout=0.5)
                return True
            except Exception:
                return False
            finally:
                await nc.close()

        return asyncio.run(ping())

    def service(self, name: str) -> ServiceProcess:
        return next(s for s in self.services if s.name == name)

    def stop(self) -> None:
        # Edges first (they depend on the others), infrastructure last.
        for service in reversed(self.services):
            service.stop()
        if self.postgres is not None:
            self.postgres.stop()
        if self.nats is not None:
            self.nats.stop()


@contextlib.contextmanager
def running_stack(
    state_dir: Path,
    *,
    nats_url: str | None = None,
    database_url: str | None = None,
    nats_system_url: str | None = None,
    nats_callout_seed: str | None = None,
    edge_replicas: int = 1,
    log_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """A stack for tests (``Stack.on_free_ports``) on the given NATS and database, embedded ones where
    a URL is None, started for the block and stopped after it."""
    stack = Stack.on_free_ports(state_dir, edge_replicas, log_dir=log_dir, extra_env=extra_env)
    stack.nats_url = nats_url
    stack.nats_system_url = nats_system_url
    stack.nats_callout_seed = nats_callout_seed
    stack.database_url = database_url
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
