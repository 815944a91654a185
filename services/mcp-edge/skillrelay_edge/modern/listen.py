"""``subscriptions/listen``: a stateless client's long-lived stream of change notifications.

Every edge replica receives the registry's events (its snapshot cache listens to them), so each keeps
its own listeners in memory and fans a change out to them in-process: any replica can hold any
client's stream, with no session, no per-client subscription and nothing stored. A client whose stream
breaks opens a new one (streams are not resumed in this era).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog

from skillrelay_edge.calls.context import INVALID_PARAMS, RequestId
from skillrelay_edge.calls.sse import KEEPALIVE, frame
from skillrelay_edge.integrations.snapshots import Change
from skillrelay_edge.modern.meta import SUBSCRIPTION_ID_KEY
from skillrelay_edge.transport import jsonrpc
from skillrelay_edge.transport.jsonrpc import RpcError
from skillrelay_edge.transport.mailbox import Mailbox

_log = structlog.get_logger("skillrelay.edge.listen")
KEEPALIVE_SECONDS = 15.0
MAX_RESOURCE_SUBSCRIPTIONS = 1000
_LIST_FLAGS = {
    "toolsListChanged": "notifications/tools/list_changed",
    "promptsListChanged": "notifications/prompts/list_changed",
    "resourcesListChanged": "notifications/resources/list_changed",
}
# Tens of thousands of listeners ask for the same few things: they share these sets.
_FLAG_SETS: dict[frozenset[str], frozenset[str]] = {}
_NO_URIS: frozenset[str] = frozenset()
_FLAG_OF_ENTITY = {
    "ability": "toolsListChanged",
    "prompt": "promptsListChanged",
    "resource": "resourcesListChanged",
}


@dataclass(frozen=True, slots=True)
class ListenFilter:
    lists: frozenset[str]  # the *ListChanged flags asked for
    resources: frozenset[str]

    def acknowledged(self) -> dict[str, Any]:
        """The subset this server honours: every kind it was asked for."""
        honoured: dict[str, Any] = {flag: True for flag in sorted(self.lists)}
        if self.resources:
            honoured["resourceSubscriptions"] = sorted(self.resources)
        return honoured


def read_filter(params: dict[str, Any]) -> ListenFilter:
    wanted = params.get("notifications")
    if not isinstance(wanted, dict):
        raise RpcError(INVALID_PARAMS, "Invalid params: notifications must be an object")
    flags = frozenset(flag for flag in _LIST_FLAGS if wanted.get(flag) is True)
    lists = _FLAG_SETS.setdefault(flags, flags)  # one shared set per combination (eight at most)
    uris = wanted.get("resourceSubscriptions", [])
    if not isinstance(uris, list) or not all(isinstance(uri, str) for uri in uris):
        raise RpcError(INVALID_PARAMS, "Invalid params: resourceSubscriptions must be a list of URIs")
    if len(uris) > MAX_RESOURCE_SUBSCRIPTIONS:
        raise RpcError(
            INVALID_PARAMS, f"Invalid params: at most {MAX_RESOURCE_SUBSCRIPTIONS} resource subscriptions"
        )
    return ListenFilter(lists, frozenset(uris) if uris else _NO_URIS)


class Listener(Mailbox[bytes]):
    """One ``subscriptions/listen`` stream: encoded notifications to send, in a slotted mailbox (tens
    of thousands are open at once; see docs/scale.md). Ended: the server ends the subscription, with
    its response, after what was queued before."""

    __slots__ = ("integration_id", "skillset_id", "subscription_id", "wanted")

    def __init__(
        self, integration_id: str, skillset_id: str, subscription_id: RequestId, wanted: ListenFilter
    ) -> None:
        super().__init__()
        self.integration_id = integration_id
        self.skillset_id = skillset_id
        self.subscription_id = subscription_id
        self.wanted = wanted

    def send(self, method: str, params: dict[str, Any] | None = None) -> None:
        self.push(_frame(method, params or {}, self.subscription_id))

    def notify(self, frames: _Frames, method: str, uri: str | None = None) -> None:
        """A notification of a change fanned out to every listener (``frames`` made once for it)."""
        wire = frames.of(method, uri, self.subscription_id)
        self.offer(wire, wire)


def _frame(method: str, params: dict[str, Any], subscription_id: Any) -> bytes:
    message = jsonrpc.notification(method, {**params, "_meta": {SUBSCRIPTION_ID_KEY: subscription_id}})
    return frame(jsonrpc.encode(message))


_MARK = "\x00subscription\x00"  # stands for the subscription id, which no JSON-RPC id can equal
_ENCODED_MARK = jsonrpc.encode(_MARK)


class _Frames:
    """The frames of one change's notifications, each encoded once for every listener: only the
    listener's subscription id differs, and is spliced in (a fan-out pays this per listener)."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: dict[tuple[str, str | None], tuple[bytes, bytes]] = {}

    def of(self, method: str, uri: str | None, subscription_id: RequestId) -> bytes:
        parts = self._parts.get((method, uri))
        if parts is None:
            head, tail = _frame(method, {"uri": uri} if uri is not None else {}, _MARK).split(_ENCODED_MARK)
            parts = self._parts[(method, uri)] = (head, tail)
        return parts[0] + jsonrpc.encode(subscription_id) + parts[1]


class ListenStreams:
    """The ``subscriptions/listen`` streams open on this replica."""

    def __init__(self) -> None:
        self._open: set[Listener] = set()

    @property
    def open_count(self) -> int:
        return len(self._open)

    async def follow(self, listener: Listener) -> AsyncIterator[bytes]:
        """The stream's SSE frames: the acknowledgment first, then the notifications asked for, until
        the client goes or the server ends it (then with the request's response, a graceful end)."""
        self._open.add(listener)
        try:
            acknowledged = {"notifications": listener.wanted.acknowledged()}
            listener.send("notifications/subscriptions/acknowledged", acknowledged)
            while True:
                item = await listener.next(KEEPALIVE_SECONDS)
                if item is not None:
                    yield item
                elif listener.ended:
                    result = {
                        "resultType": "complete",
                        "_meta": {SUBSCRIPTION_ID_KEY: listener.subscription_id},
                    }
                    yield frame(jsonrpc.encode(jsonrpc.result(listener.subscription_id, result)))
                    return
                else:
                    yield KEEPALIVE
        finally:
            self._open.discard(listener)

    def end_all(self) -> None:
        """The server is stopping: end every subscription gracefully (clients open a new one)."""
        for listener in list(self._open):
            listener.end()

    def end_integration(self, integration_id: str) -> None:
        """Its credentials were revoked (a token rotated or deleted, a JWT revoked): end its streams
        at once; a client still allowed opens a new one, whose credentials are checked again."""
        for listener in list(self._open):
            if listener.integration_id == integration_id:
                listener.end()

    def on_change(self, change: Change) -> None:
        frames = _Frames()
        for listener in list(self._open):
            try:
                _deliver(listener, change, frames)
            except Exception:
                _log.exception("listen.deliver.failed")


def _deliver(listener: Listener, change: Change, frames: _Frames) -> None:
    wanted = listener.wanted
    if change.entity == "integration":
        if change.integration_id != listener.integration_id:
            return
        if change.change == "updated" and set(change.fields) <= {"skillsetId", "name", "description", "meta"}:
            if "skillsetId" in change.fields and change.skillset_id:
                listener.skillset_id = change.skillset_id
                for flag in sorted(wanted.lists):
                    listener.notify(frames, _LIST_FLAGS[flag])
            return
        # Deleted, or its credentials or connection changed: end the stream; a client still allowed
        # opens a new one, which checks its credentials again.
        listener.end()
        return
    if change.skillset_id != listener.skillset_id:
        return
    if change.entity == "skillset":
        if change.change == "deleted":
            for flag in sorted(wanted.lists):
                listener.notify(frames, _LIST_FLAGS[flag])
        return
    entity_flag = _FLAG_OF_ENTITY.get(change.entity)
    if entity_flag is not None and entity_flag in wanted.lists:
        listener.notify(frames, _LIST_FLAGS[entity_flag])
    if change.entity == "resource" and change.change == "updated" and change.uri in wanted.resources:
        listener.notify(frames, "notifications/resources/updated", change.uri)
