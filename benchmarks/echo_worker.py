"""The benchmark's worker: ``python -m benchmarks.echo_worker <nats_url>`` serves ``echo`` with the
worker SDK on the subject the ``echo_worker`` ability names, under the benchmark integration's owner.

The benchmark's nats-server runs without authorization (it measures the data path, where a worker
credential costs nothing: the auth callout runs once, at connect), so the worker names its owner
itself instead of bringing a worker credential; ``SKILLRELAY_WORKER_CREDENTIAL`` would take precedence."""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.control_plane import OWNER_ID, WORKER_SUBJECT


def main() -> None:
    from skillrelay_worker import Worker, WorkerContext

    worker = Worker(WORKER_SUBJECT)

    @worker.tool("echo_worker")
    async def echo(ctx: WorkerContext, args: dict[str, Any]) -> str:
        return str(args["text"])

    worker.run(sys.argv[1], owner_id=OWNER_ID)


if __name__ == "__main__":
    main()
