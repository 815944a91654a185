"""The Skillrelay worker SDK: serve abilities from your own process over NATS (see ``worker.py``)."""

from skillrelay_worker.content import ToolResult, audio, embedded_resource, image, text
from skillrelay_worker.context import WorkerContext
from skillrelay_worker.errors import ClientRequestError, HandlerError, ToolError
from skillrelay_worker.worker import Worker

__all__ = [
    "ClientRequestError",
    "HandlerError",
    "ToolError",
    "ToolResult",
    "Worker",
    "WorkerContext",
    "audio",
    "embedded_resource",
    "image",
    "text",
]
