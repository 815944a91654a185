"""The base of every message on Skillrelay's bus, the worker protocol's included.

Subclasses declare ``kw_only=True`` (msgspec applies it per class) so fields may be added
with defaults in any order. Messages are tagged (``"kind": "<ClassName>"``) so that replies form
unions decoded in one pass and
dispatched with ``match``. Evolve a message by appending fields with defaults; never change a type.
"""

from __future__ import annotations

import msgspec


class Message(msgspec.Struct, kw_only=True, omit_defaults=True, tag=True, tag_field="kind"):
    """Base of every NATS message."""
