#!/usr/bin/env python3
"""Container health check: ``skillrelay-healthcheck http://127.0.0.1:8000/ready`` (HTTP 200 wanted)
or ``skillrelay-healthcheck nats <service>`` (the service answers ``<service>.service.ping`` on NATS,
for processes without an HTTP port). Exit 0 healthy, 1 not."""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.request


def check_http(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (fixed local URL)
            return bool(response.status == 200)
    except OSError:
        return False


def nats_servers(urls: str) -> list[str]:
    """SKILLRELAY_NATS_URL may name several servers, comma-separated; nats.connect wants a list."""
    return [url.strip() for url in urls.split(",") if url.strip()]


async def check_nats(service: str) -> bool:
    import nats

    try:
        nc = await nats.connect(
            nats_servers(os.environ["SKILLRELAY_NATS_URL"]), connect_timeout=3, max_reconnect_attempts=0
        )
    except Exception:
        return False
    try:
        await nc.request(f"{service}.service.ping", b"{}", timeout=3)
        return True
    except Exception:
        return False
    finally:
        await nc.close()


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "nats":
        return 0 if asyncio.run(check_nats(argv[1])) else 1
    if len(argv) == 1:
        return 0 if check_http(argv[0]) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
