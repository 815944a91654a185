"""What a handler raises to answer with an error, and the JSON-RPC codes the worker answers with."""

from __future__ import annotations

INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_TIMEOUT = -32001
RESOURCE_NOT_FOUND = -32002


class ToolError(Exception):
    """Raise in a tool to answer with an ``isError`` result carrying ``message``."""


class HandlerError(Exception):
    """Raise in a resource, prompt or completion handler to answer with a JSON-RPC error."""

    def __init__(self, message: str, code: int = INTERNAL_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ClientRequestError(Exception):
    """The client refused or failed a sampling/elicitation/roots request, or did not answer in time."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
