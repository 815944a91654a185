"""The sessions service's NATS entry points (FastStream subscribers): each endpoint reaches its use case
with the request's fields and its reply comes back typed. The use cases are a recording fake; each case
runs in memory (``TestNatsBroker``) and on the real nats-server (the ``answers_url`` fixture). The use
cases themselves are tested in ``unit/``, the whole service in ``test_sessions_service.py``."""

from __future__ import annotations

from typing import Any, cast

import pytest

from skillrelay_common.broker import Answers
from skillrelay_common.schemas.base import Invalid, Message, NotFound, Ok, Ping, Pong
from skillrelay_common.schemas.sessions import (
    CloseIdleSessions,
    CloseSession,
    CloseSessions,
    CountSessions,
    CreateSession,
    GetSession,
    ListSessions,
    SessionCounts,
    SessionInfo,
    SessionList,
    SessionsClosed,
    TouchSessions,
    UpdateSessionState,
)
from skillrelay_common.subjects import (
    SESSIONS_CLOSE,
    SESSIONS_CLOSE_ALL,
    SESSIONS_CLOSE_IDLE,
    SESSIONS_COUNT,
    SESSIONS_CREATE,
    SESSIONS_GET,
    SESSIONS_LIST,
    SESSIONS_PING,
    SESSIONS_TOUCH,
    SESSIONS_UPDATE_STATE,
    Endpoint,
)
from skillrelay_devstack.answers import serving
from skillrelay_sessions.handlers import SERVED_ENDPOINTS, register_handlers
from skillrelay_sessions.service import SessionService

SESSION = SessionInfo(
    session_id="s1",
    integration_id="mcpserver_a",
    principal="static:v1",
    created_at=1,
    last_seen_at=2,
    expires_at=3,
)


class RecordingSessions:
    """Stands in for ``SessionService``: records each call, answers a fixed value."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def _record(self, name: str, answer: Message, *args: Any, **kwargs: Any) -> Message:
        self.calls.append((name, args, kwargs))
        return answer

    async def create(self, *args: Any, **kwargs: Any) -> Message:
        return self._record("create", SESSION, *args, **kwargs)

    async def get(self, *args: Any) -> Message:
        return self._record("get", NotFound(what="session"), *args)

    async def touch(self, *args: Any) -> Message:
        return self._record("touch", Ok(), *args)

    async def update_state(self, *args: Any) -> Message:
        return self._record("update_state", Invalid(message="state too large"), *args)

    async def close(self, *args: Any) -> Message:
        return self._record("close", Ok(), *args)

    async def close_all(self, *args: Any) -> Message:
        return self._record("close_all", SessionsClosed(count=2), *args)

    async def list(self, *args: Any) -> Message:
        return self._record("list", SessionList(sessions=[SESSION]), *args)

    async def close_idle(self, *args: Any) -> Message:
        return self._record("close_idle", SessionsClosed(count=1), *args)

    async def count(self, *args: Any) -> Message:
        return self._record("count", SessionCounts(counts={"mcpserver_a": 4}), *args)


# endpoint, request, the use case it reaches with these arguments, and the reply.
CASES: list[tuple[Endpoint[Any, Any], Message, tuple[str, tuple[Any, ...], dict[str, Any]], Message]] = [
    (
        SESSIONS_CREATE,
        CreateSession(integration_id="mcpserver_a", principal="static:v1", max_sessions=5, ttl_seconds=60),
        ("create", ("mcpserver_a", "static:v1", None, {}, 5), {"ttl_seconds": 60}),
        SESSION,
    ),
    (SESSIONS_GET, GetSession(session_id="s9"), ("get", ("s9",), {}), NotFound(what="session")),
    (
        SESSIONS_TOUCH,
        TouchSessions(session_ids=["s1", "s2"], seen_at=10.5),
        ("touch", (["s1", "s2"], 10.5), {}),
        Ok(),
    ),
    (
        SESSIONS_UPDATE_STATE,
        UpdateSessionState(session_id="s1", state={"logLevel": "info"}, add_items={"subs": ["a"]}),
        ("update_state", ("s1", {"logLevel": "info"}, None, {"subs": ["a"]}, {}), {}),
        Invalid(message="state too large"),
    ),
    (
        SESSIONS_CLOSE,
        CloseSession(session_id="s1", reason="deleted", integration_id="mcpserver_a"),
        ("close", ("s1", "deleted", "mcpserver_a"), {}),
        Ok(),
    ),
    (
        SESSIONS_CLOSE_ALL,
        CloseSessions(integration_id="mcpserver_a", principal="oauth:u"),
        ("close_all", ("mcpserver_a", "oauth:u", "revoked"), {}),
        SessionsClosed(count=2),
    ),
    (
        SESSIONS_LIST,
        ListSessions(integration_id="mcpserver_a", take=10, order="desc"),
        ("list", ("mcpserver_a", 10, True, None), {}),
        SessionList(sessions=[SESSION]),
    ),
    (
        SESSIONS_CLOSE_IDLE,
        CloseIdleSessions(integration_id="mcpserver_a", idle_seconds=300, reason="idle"),
        ("close_idle", ("mcpserver_a", 300, "idle"), {}),
        SessionsClosed(count=1),
    ),
    (
        SESSIONS_COUNT,
        CountSessions(integration_ids=["mcpserver_a"]),
        ("count", (["mcpserver_a"],), {}),
        SessionCounts(counts={"mcpserver_a": 4}),
    ),
]


def sessions_answers(fake: RecordingSessions) -> Answers:
    answers = Answers("sessions", "sessions-test")
    register_handlers(answers, cast(SessionService, fake))
    return answers


def test_the_cases_cover_every_served_endpoint() -> None:
    covered = {endpoint.subject for endpoint, *_ in CASES} | {SESSIONS_PING.subject}
    assert covered == {endpoint.subject for endpoint in SERVED_ENDPOINTS}
    served = sessions_answers(RecordingSessions()).served_endpoints
    assert {endpoint.subject for endpoint in served} == covered


@pytest.mark.parametrize(
    ("endpoint", "request_", "call", "reply"), CASES, ids=lambda v: getattr(v, "subject", "")
)
async def test_each_endpoint_reaches_its_use_case_and_answers(
    answers_url: str | None,
    endpoint: Endpoint[Any, Any],
    request_: Message,
    call: tuple[str, tuple[Any, ...], dict[str, Any]],
    reply: Message,
) -> None:
    fake = RecordingSessions()
    async with serving(sessions_answers(fake), answers_url) as asker:
        answer = await asker.ask(endpoint, request_)
    assert fake.calls == [call]
    assert answer == reply


async def test_ping_names_the_instance(answers_url: str | None) -> None:
    async with serving(sessions_answers(RecordingSessions()), answers_url) as asker:
        assert await asker.ask(SESSIONS_PING, Ping()) == Pong(service="sessions", instance_id="sessions-test")
