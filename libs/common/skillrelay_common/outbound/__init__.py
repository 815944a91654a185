"""Outbound HTTP for abilities and upstream sources: an SSRF-guarded, pooled HTTP/1.1 client."""

from skillrelay_common.outbound.client import OutboundClient, RequestShape, encode_query
from skillrelay_common.outbound.http1 import BodyTooLarge, ConnectionLost, OutboundError, Response
from skillrelay_common.outbound.targets import TargetCache

__all__ = [
    "BodyTooLarge",
    "ConnectionLost",
    "OutboundClient",
    "OutboundError",
    "RequestShape",
    "Response",
    "TargetCache",
    "encode_query",
]
