"""Multi round-trip requests (SEP-2322) as an ability runner sees them.

A stateless-era request that runs an ability carries an ``InputExchange``: the answers the client sent
(``inputResponses``) and, on a retry, where the suspended call waits (``ResumePoint``, from the
verified ``requestState``). A runner whose handler asks the client something looks the question's key
up in the answers; an unanswered question ends the request with ``InputRequired`` (the edge answers
``resultType: "input_required"``) while the handler stays suspended in its worker, to be continued by
the retry on whichever edge replica it reaches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from skillrelay_edge.calls.context import INVALID_PARAMS
from skillrelay_edge.transport.jsonrpc import RpcError

# Which client capability each input request needs.
CAPABILITY_OF = {
    "sampling/createMessage": "sampling",
    "elicitation/create": "elicitation",
    "roots/list": "roots",
}
_KEY_PREFIX = {"sampling/createMessage": "sample", "elicitation/create": "elicit", "roots/list": "roots"}


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a suspended call waits: its worker call, the last event the edge saw of it, and the
    deadline of the whole call (its ability's timeout, counted from the first request)."""

    call_id: str
    after_seq: int
    deadline: float


@dataclass(frozen=True, slots=True)
class InputExchange:
    responses: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    resume: ResumePoint | None = None


# A request with neither answers nor a resume point (most requests): one shared, read-only exchange.
NO_INPUTS = InputExchange(MappingProxyType({}))


class InputRequired(Exception):
    """The handler waits for the client: answer ``input_required`` with these requests."""

    def __init__(self, requests: dict[str, dict[str, Any]], resume: ResumePoint) -> None:
        super().__init__("input required")
        self.requests = requests
        self.resume = resume


def input_key(method: str, seq: int, key: str | None = None) -> str:
    """The ``inputRequests`` key of a question: the handler's own, else one stable across retries
    (the worker's event sequence number does not change when the question is asked again)."""
    return key or f"{_KEY_PREFIX.get(method, 'input')}-{seq}"


def read_input_responses(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``inputResponses`` of a request: absent is none; anything but a map of objects is Invalid params."""
    if "inputResponses" not in params:
        return {}
    responses = params["inputResponses"]
    if not isinstance(responses, dict):
        raise RpcError(INVALID_PARAMS, "Invalid params: inputResponses must be an object")
    for key, value in responses.items():
        if not isinstance(value, dict):
            raise RpcError(
                INVALID_PARAMS, f"Invalid params: inputResponses[{str(key)[:60]!r}] must be an object"
            )
    return responses
