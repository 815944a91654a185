"""``skillrelay audit tail [--integration ID]``: print the live audit stream.

Reads through a durable JetStream pull consumer named after the filter (``audit-tail-all`` or
``audit-tail-<integrationId>``) and acknowledges each record once printed, so a restarted ``tail``
resumes where the previous one stopped. The first run starts at new records (``--from-start``: at the
oldest stored one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import sys
from datetime import timedelta
from typing import Any, TextIO

import msgspec
import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from skillrelay_common.audit import audit_stream, decode_records, encode_record, stream_config
from skillrelay_common.messaging import Bus
from skillrelay_common.schemas.audit import AuditRecord
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import AUDIT_STREAM, audit_filter

# A consumer nobody read from for this long is removed by the server.
CONSUMER_INACTIVE = timedelta(days=7).total_seconds()
INTEGRATION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def consumer_name(integration_id: str | None) -> str:
    return f"audit-tail-{integration_id}" if integration_id else "audit-tail-all"


def format_record(record: AuditRecord) -> str:
    data = record.data
    parts = [record.time, record.subject, data.kind, data.outcome]
    if data.principal:
        parts.append(f"principal={data.principal}")
    if data.latency_ms is not None:
        parts.append(f"latency_ms={data.latency_ms}")
    if data.details:
        parts.append(msgspec.json.encode(data.details).decode())
    if data.correlation_id:
        parts.append(f"cid={data.correlation_id}")
    return "  ".join(parts)


async def tail(
    nats_url: str,
    integration_id: str | None,
    *,
    out: TextIO,
    json_lines: bool = False,
    from_start: bool = False,
    count: int | None = None,
    stop: asyncio.Event | None = None,
    stream_name: str = AUDIT_STREAM.name,
) -> int:
    """Print records until ``stop`` is set or ``count`` records were printed; returns how many."""
    if integration_id is not None and not INTEGRATION_ID.match(integration_id):
        raise ValueError(f"{integration_id!r} is not an integration id")
    stop = stop or asyncio.Event()
    bus = await Bus.connect(nats_url, "audit-cli")
    printed = 0
    try:
        if stream_name == AUDIT_STREAM.name:
            # Nobody recorded anything yet: create the stream as the services would (never alter it).
            with contextlib.suppress(nats.js.errors.BadRequestError):
                await bus.js.add_stream(stream_config(audit_stream(Settings.from_env())))
        config = ConsumerConfig(
            durable_name=consumer_name(integration_id),
            filter_subject=audit_filter(integration_id),
            deliver_policy=DeliverPolicy.ALL if from_start else DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
            inactive_threshold=CONSUMER_INACTIVE,
        )
        subscription = await bus.js.pull_subscribe(
            config.filter_subject or "", durable=config.durable_name, stream=stream_name, config=config
        )
        while not stop.is_set() and (count is None or printed < count):
            try:
                batch = await subscription.fetch(
                    batch=min(100, count - printed) if count else 100, timeout=0.5
                )
            except TimeoutError:  # nats' own TimeoutError is a subclass
                continue
            for message in batch:
                try:
                    records = decode_records(message.data)
                except msgspec.DecodeError:
                    await message.term()
                    continue
                for record in records:  # a message may hold a parcel of records
                    line = encode_record(record).decode() if json_lines else format_record(record)
                    out.write(line + "\n")
                out.flush()
                await message.ack()
                printed += len(records)
    finally:
        # Flush our acks, then close without draining: a pending pull request would hold a drain
        # until its timeout.
        with contextlib.suppress(Exception):
            await bus.nc.flush(timeout=2)
        await bus.nc.close()
    return printed


def _run(args: argparse.Namespace) -> int:
    url = args.nats_url or Settings.from_env().nats.url
    if not url:
        print(
            "Set SKILLRELAY_NATS_URL or pass --nats-url (make run prints the NATS URL)",
            file=sys.stderr,
        )
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await tail(
            url,
            args.integration,
            out=sys.stdout,
            json_lines=args.json,
            from_start=args.from_start,
            count=args.count,
            stop=stop,
        )

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0


def register(commands: Any) -> None:
    """Add ``audit tail`` to the ``skillrelay`` command line (``commands`` from add_subparsers)."""
    audit = commands.add_parser("audit", help="audit records")
    sub = audit.add_subparsers(dest="audit_command", required=True)
    tail_parser = sub.add_parser("tail", help="print the live audit stream (resumes where it stopped)")
    tail_parser.add_argument("--integration", help="only records of this integration (mcpserver_…)")
    tail_parser.add_argument("--nats-url", help="NATS server (default: SKILLRELAY_NATS_URL)")
    tail_parser.add_argument("--json", action="store_true", help="one JSON record per line")
    tail_parser.add_argument(
        "--from-start", action="store_true", help="first run only: start at the oldest stored record"
    )
    tail_parser.add_argument(
        "--count", type=int, help="exit after printing at least this many records (a parcel is printed whole)"
    )
    tail_parser.set_defaults(func=_run)
