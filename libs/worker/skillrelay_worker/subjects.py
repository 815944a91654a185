"""The worker subjects (dynamic subject families; ``protocol.py`` describes the protocol).

Every worker subject is scoped by the owner of the ability: a ``worker`` handler's ``subject`` is
relative to its owner, so two owners may use the same name and never reach each other's workers. A
worker's credential names its owner, and the bus lets it use only that owner's subjects
(``worker_permissions``; docs/security.md).

    worker.<ownerId>.<subject>              WorkerCall, queue group of the same name (one worker runs it)
    workerev.<edgeKey>.<ownerId>.<callId>   WorkerEvent / WorkerClientRequest back to the edge holding it
    workerctl.<ownerId>.cancel              WorkerCancel, to every worker of the owner
    workerctl.<ownerId>.adopt               WorkerAdopt (a request), to every worker of the owner; the
                                            holder replies
    winbox.<ownerId>.<random>.…             a worker's inbox (client answers, "no responders" statuses);
                                            never under ``_INBOX.``, where the services' replies flow
"""

from __future__ import annotations

import uuid

WORKER_SUBJECT_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
WORKER_INBOX_ROOT = "winbox"


def worker_call_subject(owner_id: str, subject: str) -> str:
    """Where the workers of ``owner_id`` serving ``{"type":"worker","subject":…}`` listen (also their
    queue group)."""
    return f"worker.{owner_id}.{subject}"


def worker_events_subject(edge_key: str, owner_id: str, call_id: str) -> str:
    return f"workerev.{edge_key}.{owner_id}.{call_id}"


def worker_events_wildcard(edge_key: str) -> str:
    return f"workerev.{edge_key}.*.*"


def parse_events_subject(subject: str) -> tuple[str, str] | None:
    """``(ownerId, callId)`` of a ``workerev.<edgeKey>.<ownerId>.<callId>`` subject."""
    parts = subject.split(".")
    return (parts[2], parts[3]) if len(parts) == 4 else None


def worker_cancel_subject(owner_id: str) -> str:
    return f"workerctl.{owner_id}.cancel"


def worker_adopt_subject(owner_id: str) -> str:
    return f"workerctl.{owner_id}.adopt"


def new_worker_inbox(owner_id: str) -> str:
    return f"{WORKER_INBOX_ROOT}.{owner_id}.{uuid.uuid4().hex}"


def worker_permissions(owner_id: str) -> tuple[list[str], list[str]]:
    """What a worker connected with a credential of ``owner_id`` may publish and subscribe to: its
    owner's calls, cancellations and adoptions, its own inbox, and events of its owner's calls.
    Replies to what it is asked (adoption) come on top, once per request (docs/security.md)."""
    publish = [f"workerev.*.{owner_id}.*"]
    subscribe = [f"worker.{owner_id}.>", f"workerctl.{owner_id}.>", f"{WORKER_INBOX_ROOT}.{owner_id}.>"]
    return publish, subscribe
