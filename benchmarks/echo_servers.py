"""The baselines, each run as its own process: ``python -m benchmarks.echo_servers <kind> <port> <token>``.

- ``sdk``: the official MCP Python SDK (``MCPServer``, stateless, JSON responses) with an ``echo`` tool;
- ``sdk-lowlevel``: the SDK's low-level ``Server`` with the same tool (less work per call);
- ``litestar``: a raw Litestar route that parses the JSON-RPC body and answers the same result.

All check ``Authorization: Bearer <token>`` in a tiny ASGI middleware, as the edge does."""

from __future__ import annotations

import sys
from typing import Any

import msgspec
import uvicorn
from litestar import Litestar, Request, Response, post


def _with_token(app: Any, token: str) -> Any:
    expected = f"Bearer {token}".encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != expected:
            await send({"type": "http.response.start", "status": 401, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    return guarded


def sdk_app() -> Any:
    from mcp.server import MCPServer

    server = MCPServer("echo-baseline", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the input text."""
        return text

    return server.streamable_http_app(stateless_http=True, json_response=True, host="127.0.0.1")


def sdk_lowlevel_app() -> Any:
    import mcp.types as types
    from mcp.server import Server, ServerRequestContext

    tool = types.Tool(
        name="echo",
        description="Echo the input text.",
        input_schema={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    )

    async def list_tools(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool])

    async def call_tool(
        ctx: ServerRequestContext, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=(params.arguments or {})["text"])]
        )

    server = Server("echo-lowlevel", on_list_tools=list_tools, on_call_tool=call_tool)
    return server.streamable_http_app(stateless_http=True, json_response=True, host="127.0.0.1")


def litestar_app() -> Any:
    decoder = msgspec.json.Decoder()
    encoder = msgspec.json.Encoder()

    @post("/mcp", status_code=200)
    async def echo(request: Request[Any, Any, Any]) -> Response[bytes]:
        message = decoder.decode(await request.body())
        text = message["params"]["arguments"]["text"]
        answer = {
            "jsonrpc": "2.0",
            "id": message["id"],
            "result": {"content": [{"type": "text", "text": text}]},
        }
        return Response(encoder.encode(answer), media_type="application/json")

    return Litestar(route_handlers=[echo])


def main() -> None:
    kind, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    factory = {"sdk": sdk_app, "sdk-lowlevel": sdk_lowlevel_app, "litestar": litestar_app}[kind]
    uvicorn.run(
        _with_token(factory(), token),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on" if kind.startswith("sdk") else "auto",
    )


if __name__ == "__main__":
    main()
