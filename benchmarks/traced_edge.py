"""An edge replica under ``tracemalloc``, for ``make bench-scale`` with ``--profile-memory``.

Runs the edge exactly as ``python -m skillrelay_edge`` does; on SIGUSR1 it writes a tracemalloc
snapshot to the next ``<SKILLRELAY_BENCH_SNAPSHOT>.<n>`` file, so the benchmark can diff the edge's
Python allocations before and after its clients connect (what one listening client costs, by line).
Tracing starts at the first signal: only what is allocated after it matters to the diff, and tracing
the edge's start-up (every import) would take minutes.
"""

from __future__ import annotations

import gc
import itertools
import os
import signal
import tracemalloc
from types import FrameType

from skillrelay_edge.app import main

_numbers = itertools.count()


def _snapshot(_signal: int, _frame: FrameType | None) -> None:
    if not tracemalloc.is_tracing():
        tracemalloc.start(12)
    gc.collect()
    path = f"{os.environ['SKILLRELAY_BENCH_SNAPSHOT']}.{next(_numbers)}"
    tracemalloc.take_snapshot().dump(path)
    with open(path + ".done", "w"):
        pass


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, _snapshot)
    main()
