"""The reply variants every request may answer with, on the message base shared with the worker protocol
(``skillrelay_worker.message``: the conventions of every message are written there)."""

from __future__ import annotations

# Defined with the worker protocol (a worker installs without this library); imported from here too.
from skillrelay_worker.message import Message as Message


class Ok(Message, kw_only=True):
    """The request was carried out; nothing more to say."""


class NotFound(Message, kw_only=True):
    """The thing asked about does not exist (or belongs to someone else: the two look the same)."""

    what: str = ""


class Denied(Message, kw_only=True):
    """The credential or principal is not allowed. ``reason`` is safe to log (never a secret)."""

    reason: str = ""


class Invalid(Message, kw_only=True):
    """The request was malformed or violated a rule; ``message`` is safe to show to a client."""

    message: str


class Conflict(Message, kw_only=True):
    message: str


class Unavailable(Message, kw_only=True):
    """No responder, a timeout, or a failure inside the responder. Never raised: returned."""

    message: str = ""


class Ping(Message, kw_only=True):
    """Liveness probe answered by every service over NATS."""


class Pong(Message, kw_only=True):
    service: str
    instance_id: str
