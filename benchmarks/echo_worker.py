"""The benchmark's worker: ``python -m benchmarks.echo_worker <nats_url>`` serves ``echo`` with the
worker SDK on the subject the ``echo_worker`` ability names."""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.control_plane import WORKER_SUBJECT


def main() -> None:
    from skillrelay_worker import Worker, WorkerContext

    worker = Worker(WORKER_SUBJECT)

    @worker.tool("echo_worker")
    async def echo(ctx: WorkerContext, args: dict[str, Any]) -> str:
        return str(args["text"])

    worker.run(sys.argv[1])


if __name__ == "__main__":
    main()
