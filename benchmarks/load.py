"""A small HTTP/1.1 keep-alive load generator (asyncio streams, uvloop when available).

``python -m benchmarks.load SPEC_JSON`` runs the requests described in the spec for a fixed time over
``concurrency`` connections and prints one JSON line: requests, errors, req/s, p50 and p99 in ms.
Hand-rolled so the generator costs far less CPU per request than the servers it measures."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any


def build_request(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = -1
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value.strip())
        elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if length >= 0:
        return status, await reader.readexactly(length)
    if chunked:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return status, b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    return status, b""


async def _connection(
    host: str,
    port: int,
    request: bytes,
    deadline: float,
    latencies: list[float],
    errors: list[int],
    expect: bytes,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            started = time.perf_counter()
            if started >= deadline:
                return
            writer.write(request)
            status, body = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            if status != 200 or expect not in body:
                errors.append(status)
    finally:
        writer.close()


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], int(spec["port"])
    request = build_request(host, port, spec["path"], spec["headers"], spec["body"].encode())
    expect = spec.get("expect", "").encode()
    concurrency = int(spec.get("concurrency", 16))
    # Warm-up (not measured): caches, JIT-free Python still warms allocators and connection pools.
    warm: list[float] = []
    warm_errors: list[int] = []
    warm_deadline = time.perf_counter() + float(spec.get("warmup", 1.0))
    await asyncio.gather(
        *(
            _connection(host, port, request, warm_deadline, warm, warm_errors, expect)
            for _ in range(concurrency)
        )
    )
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    deadline = started + float(spec.get("duration", 5.0))
    await asyncio.gather(
        *(_connection(host, port, request, deadline, latencies, errors, expect) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    count = len(latencies)

    def percentile(p: float) -> float:
        return latencies[min(count - 1, int(count * p))] * 1000 if count else 0.0

    return {
        "requests": count,
        "warmup_requests": len(warm),
        "errors": len(errors) + len(warm_errors),
        "error_statuses": sorted(set(errors + warm_errors)),
        "rps": count / elapsed if elapsed else 0.0,
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(run(spec))))


if __name__ == "__main__":
    main()
