"""``skillrelay`` command line: ``run`` starts the whole stack in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from skillrelay import audit_cli
from skillrelay_common import bus_auth
from skillrelay_common.settings import Settings
from skillrelay_devstack.stack import Stack


def run(_: argparse.Namespace) -> int:
    settings = Settings.from_env()
    stack = Stack.from_settings(settings)
    started = time.monotonic()
    print(f"Starting Skillrelay (state in {settings.state_dir}/) …", flush=True)
    stack.start()
    elapsed = time.monotonic() - started
    print(
        "\nSkillrelay is ready in {:.1f}s\n"
        "  registry (REST API, dashboard): {}\n"
        "  MCP edge:                      {}\n"
        "  auth (OAuth 2.1):              {}\n"
        "  NATS:                          {}\n"
        "  PostgreSQL:                    {}\n"
        "  admin token:                   {}\n\n"
        "Create a user:  curl -s -X POST {}/api/v1/user/create -H 'Authorization: Bearer {}' "
        "-H 'Content-Type: application/json' -d '{{\"name\":\"me\"}}'\n"
        "Press Ctrl-C to stop.".format(
            elapsed,
            settings.http.registry_public_url,
            settings.http.edge_public_url,
            settings.http.auth_public_url,
            stack.nats_public_url,
            _hide_password(stack.database_url or ""),
            stack.admin_token,
            settings.http.registry_public_url,
            stack.admin_token,
        ),
        flush=True,
    )
    stopping = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stopping:
            for service in stack.services:
                if not service.alive():
                    print(f"{service.name} exited; stopping the stack", file=sys.stderr, flush=True)
                    stopping = True
            time.sleep(0.5)
    finally:
        print("\nStopping …", flush=True)
        stack.stop()
        print("Stopped. State kept in", settings.state_dir, flush=True)
    return 0


def _hide_password(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


def bus_secrets(_: argparse.Namespace) -> int:
    """New bus credentials for docker-compose.yml (or any external NATS), as shell exports."""
    generated = bus_auth.BusSecrets.generate()
    print(f"export SKILLRELAY_NATS_SERVICE_PASSWORD={generated.service_password}")
    print(f"export SKILLRELAY_NATS_SYSTEM_PASSWORD={generated.system_password}")
    print(f"export SKILLRELAY_NATS_CALLOUT_SEED={generated.callout_seed}")
    print(f"export SKILLRELAY_NATS_CALLOUT_ISSUER={generated.callout_issuer}")
    print(f"export SKILLRELAY_NATS_ROUTE_PASSWORD={generated.route_password}")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="skillrelay")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the whole stack in the foreground").set_defaults(func=run)
    commands.add_parser(
        "bus-secrets", help="print new NATS credentials (services, system, callout, routes) as shell exports"
    ).set_defaults(func=bus_secrets)
    audit_cli.register(commands)
    args = parser.parse_args(argv)
    sys.exit(args.func(args))
