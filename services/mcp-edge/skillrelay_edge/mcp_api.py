"""HTTP entry point of the MCP endpoint: decode the request, call ``McpEndpoint``, encode the answer."""

from __future__ import annotations

from typing import Any, Protocol

from litestar import Request, Response, route
from litestar.handlers import HTTPRouteHandler
from litestar.response import Stream

from skillrelay_edge.endpoint import BodyTooLarge, HttpAnswer, HttpInput, McpEndpoint


class EndpointHolder(Protocol):
    endpoint: McpEndpoint | None


MCP_PATH = "/api/v1/integration/mcpserver/{integration_id:str}/mcp"


def _encode(answer: HttpAnswer) -> Response[Any]:
    if answer.stream is not None:
        return Stream(
            answer.stream, status_code=answer.status, headers=answer.headers, media_type=answer.media_type
        )
    return Response(
        answer.body if answer.body is not None else b"",
        status_code=answer.status,
        headers=answer.headers,
        media_type=answer.media_type,
    )


def mcp_routes(holder: EndpointHolder, max_body_bytes: int) -> list[HTTPRouteHandler]:
    @route(MCP_PATH, http_method=["POST", "GET", "DELETE"], include_in_schema=False)
    async def mcp(request: Request[Any, Any, Any]) -> Response[Any]:
        async def read_body() -> bytes:
            chunks: list[bytes] = []
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_body_bytes:
                    raise BodyTooLarge
                chunks.append(chunk)
            return b"".join(chunks)

        inp = HttpInput(
            integration_id=request.path_params["integration_id"],
            headers=request.headers,
            query_token=request.query_params.get("authorization"),
            read_body=read_body,
        )
        endpoint = holder.endpoint
        if endpoint is None:
            return Response(b"", status_code=503)
        method = request.method
        if method == "POST":
            answer = await endpoint.post(inp)
        elif method == "GET":
            answer = await endpoint.get(inp)
        else:
            answer = await endpoint.delete(inp)
        return _encode(answer)

    return [mcp]
