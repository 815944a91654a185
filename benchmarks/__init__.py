"""``python -m benchmarks`` (``make bench``): requests per second and latency of an echo tool served by
the official MCP Python SDK, a raw Litestar echo, and the Skillrelay edge (static and worker abilities)."""
