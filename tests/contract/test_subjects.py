"""The NATS contract: every subject has exactly one answering service, and messages round-trip."""

from typing import Any

import msgspec
import pytest

from skillrelay_auth.handlers import SERVED_ENDPOINTS as AUTH
from skillrelay_common import subjects
from skillrelay_common.schemas.base import Message
from skillrelay_edge.handlers import SERVED_ENDPOINTS as EDGE
from skillrelay_registry.handlers import SERVED_ENDPOINTS as REGISTRY
from skillrelay_sessions.handlers import SERVED_ENDPOINTS as SESSIONS

SERVICES = {"registry": REGISTRY, "auth": AUTH, "sessions": SESSIONS, "edge": EDGE}


@pytest.mark.parametrize("endpoint", subjects.all_endpoints(), ids=lambda e: e.subject)
def test_every_subject_has_exactly_one_owner(endpoint: subjects.Endpoint[Any, Any]) -> None:
    owners = [name for name, served in SERVICES.items() if endpoint in served]
    assert owners == [endpoint.service]


def test_subjects_follow_the_naming_rules() -> None:
    for endpoint in subjects.all_endpoints():
        parts = endpoint.subject.split(".")
        assert len(parts) == 3 and parts[0] == endpoint.service, endpoint.subject
    for event in subjects.all_events():
        parts = event.subject.split(".")
        assert parts[0] == "events" and len(parts) == 4, event.subject
    assert len({e.subject for e in subjects.all_endpoints()}) == len(subjects.all_endpoints())


def _message_types() -> set[type[Message]]:
    found: set[type[Message]] = set()
    pending: list[type[Message]] = [Message]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.add(sub)
            pending.append(sub)
    return found


def test_request_types_round_trip_through_json() -> None:
    for endpoint in subjects.all_endpoints():
        schema = msgspec.json.schema(endpoint.request)
        assert schema, endpoint.subject
        reply_schema = msgspec.json.schema(endpoint.reply)
        assert reply_schema, endpoint.subject
    assert len(_message_types()) > 20
