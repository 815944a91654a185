"""The message base and the reply variants every request may answer with.

Subclasses declare ``kw_only=True`` (msgspec applies it per class) so fields may be added
with defaults in any order. Messages are tagged (``"kind": "<ClassName>"``) so that replies form
unions decoded in one pass and
dispatched with ``match``. Evolve a message by appending fields with defaults; never change a type.
"""

from __future__ import annotations

import msgspec


class Message(msgspec.Struct, kw_only=True, omit_defaults=True, tag=True, tag_field="kind"):
    """Base of every NATS message."""


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
