"""JSON-RPC 2.0 framing: decode a POST body into messages, classify them, build answers.

Messages stay plain dicts (decoded once by msgspec): MCP params are open-ended and the hot path must
not pay for a second validation layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from skillrelay_common.json_limits import MAX_JSON_DEPTH, is_utf8, json_depth
from skillrelay_edge.calls.context import INVALID_REQUEST, PARSE_ERROR, RequestId

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()

encode = _encoder.encode


class FramingError(Exception):
    """The body is not JSON (-32700) or not a JSON-RPC message (-32600)."""

    def __init__(self, code: int, message: str, request_id: RequestId | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Incoming:
    """One decoded JSON-RPC message from the client."""

    kind: str  # "request" | "notification" | "response"
    message: dict[str, Any]

    @property
    def id(self) -> RequestId | None:
        value = self.message.get("id")
        return value if isinstance(value, str | int) and not isinstance(value, bool) else None

    @property
    def method(self) -> str:
        return str(self.message.get("method", ""))

    @property
    def params(self) -> dict[str, Any]:
        params = self.message.get("params")
        return params if isinstance(params, dict) else {}


def decode_body(body: bytes) -> tuple[list[Incoming], bool]:
    """The messages in ``body`` and whether it was a batch (a JSON array). Depth and encoding are
    checked on the bytes first: the decoder would raise ``RecursionError`` / ``UnicodeDecodeError``."""
    if not is_utf8(body):
        raise FramingError(PARSE_ERROR, "Parse error: body is not valid UTF-8")
    if json_depth(body) > MAX_JSON_DEPTH:
        raise FramingError(PARSE_ERROR, f"Parse error: JSON is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        payload = _decoder.decode(body)
    except msgspec.DecodeError:
        raise FramingError(PARSE_ERROR, "Parse error: body is not valid JSON") from None
    if isinstance(payload, list):
        if not payload:
            raise FramingError(INVALID_REQUEST, "Invalid Request: empty batch")
        return [classify(item) for item in payload], True
    return [classify(payload)], False


def classify(payload: Any) -> Incoming:
    if not isinstance(payload, dict) or payload.get("jsonrpc") != "2.0":
        raise FramingError(INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message", _id_of(payload))
    has_id = "id" in payload
    request_id = payload.get("id")
    if has_id and (
        request_id is None or isinstance(request_id, bool) or not isinstance(request_id, str | int)
    ):
        raise FramingError(INVALID_REQUEST, "Invalid Request: id must be a string or an integer")
    if "method" in payload:
        if not isinstance(payload["method"], str):
            raise FramingError(INVALID_REQUEST, "Invalid Request: method must be a string", _id_of(payload))
        params = payload.get("params")
        if params is not None and not isinstance(params, dict):
            raise FramingError(INVALID_REQUEST, "Invalid Request: params must be an object", _id_of(payload))
        return Incoming("request" if has_id else "notification", payload)
    if has_id and ("result" in payload or "error" in payload):
        return Incoming("response", payload)
    raise FramingError(INVALID_REQUEST, "Invalid Request: neither a request, a notification nor a response")


def _id_of(payload: Any) -> RequestId | None:
    if isinstance(payload, dict):
        value = payload.get("id")
        if isinstance(value, str | int) and not isinstance(value, bool):
            return value
    return None


def result(request_id: RequestId | None, value: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": value}


def error(request_id: RequestId | None, code: int, message: str, data: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": body}


def notification(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def request(request_id: RequestId, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


class RpcError(Exception):
    """Raised by method handlers; becomes a JSON-RPC error answer for the request."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
