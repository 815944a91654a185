"""The HTTP transport: Streamable HTTP rules, JSON-RPC framing, the MCP endpoint's use cases and its
ASGI route."""
