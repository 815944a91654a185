"""The worker subjects (dynamic subject families; ``protocol.py`` describes the protocol)."""

from __future__ import annotations

# Workers are user processes, and these subjects carry a per-ability or per-call part:
#   worker.<subject>                      WorkerCall, queue group "worker.<subject>" (one worker runs it)
#   workerev.<edgeKey>.<callId>           WorkerEvent / WorkerClientRequest back to the edge holding it
#   workerctl.cancel                      WorkerCancel, broadcast to every worker
#   workerctl.adopt                       WorkerAdopt (a request), broadcast; the holder replies
WORKER_SUBJECT_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
WORKER_CANCEL_SUBJECT = "workerctl.cancel"
WORKER_ADOPT_SUBJECT = "workerctl.adopt"


def worker_call_subject(subject: str) -> str:
    """Where workers for a ``{"type":"worker","subject":…}`` handler listen (also their queue group)."""
    return f"worker.{subject}"


def worker_events_subject(edge_key: str, call_id: str) -> str:
    return f"workerev.{edge_key}.{call_id}"


def worker_events_wildcard(edge_key: str) -> str:
    return f"workerev.{edge_key}.*"
