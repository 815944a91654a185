"""The stateless MCP era (2026-07-28 and later): no initialize, no session; each request carries its
protocol version, client info and capabilities in ``_meta``. See ``docs/mcp-2026.md``."""
