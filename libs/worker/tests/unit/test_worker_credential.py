"""The worker credential: what it holds, how it is read, and that a worker needs one."""

from __future__ import annotations

import pytest

from skillrelay_worker import Worker
from skillrelay_worker.credential import MalformedCredential, WorkerCredential, with_user
from skillrelay_worker.subjects import (
    parse_events_subject,
    worker_call_subject,
    worker_events_subject,
    worker_permissions,
)


def test_a_credential_names_its_owner_and_id_and_round_trips() -> None:
    credential = WorkerCredential.generate("user_abc", "workercredential_xyz")
    text = str(credential)
    assert text.startswith("sr_worker_user_abc.workercredential_xyz.")
    parsed = WorkerCredential.parse(f"  {text}\n")
    assert parsed == credential
    assert credential.secret not in repr(credential)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sr_mcp_x",
        "sr_worker_user_a.cred",
        "sr_worker_user.a.cred.secretsecretsecretsecret",
        "sr_worker_user_a.cred.short",
        "sr_worker_user_a.cr ed.secretsecretsecretsecret",
        "sr_worker_user_a.*.secretsecretsecretsecret",
        "sr_worker_user_a.>.secretsecretsecretsecret",
    ],
)
def test_malformed_credentials_are_refused_without_repeating_them(text: str) -> None:
    with pytest.raises(MalformedCredential) as refused:
        WorkerCredential.parse(text)
    assert "secretsecret" not in str(refused.value)


def test_the_credential_becomes_every_servers_user_and_password() -> None:
    credential = WorkerCredential("user_a", "workercredential_b", "s" * 43)
    url = credential.connect_url("nats://old:pw@n1:4222, nats://n2:4222")
    assert url == f"nats://workercredential_b:{'s' * 43}@n1:4222,nats://workercredential_b:{'s' * 43}@n2:4222"
    assert with_user("tls://h:1", "u", "p@ss") == "tls://u:p%40ss@h:1"


def test_subjects_are_scoped_by_the_owner() -> None:
    assert worker_call_subject("user_a", "billing.v1") == "worker.user_a.billing.v1"
    assert worker_call_subject("user_a", "x") != worker_call_subject("user_b", "x")
    events = worker_events_subject("edge1", "user_a", "call9")
    assert parse_events_subject(events) == ("user_a", "call9")
    assert parse_events_subject("workerev.edge1.call9") is None
    publish, subscribe = worker_permissions("user_a")
    assert publish == ["workerev.*.user_a.*"]
    assert "worker.user_a.>" in subscribe and not any(s.startswith(("_INBOX", ">")) for s in subscribe)


async def test_a_worker_without_a_credential_or_owner_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SKILLRELAY_WORKER_CREDENTIAL", raising=False)
    with pytest.raises(ValueError, match="worker credential"):
        await Worker("unit").start("nats://127.0.0.1:1")


def test_a_worker_reads_its_credential_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    credential = WorkerCredential.generate("user_env", "workercredential_env")
    monkeypatch.setenv("SKILLRELAY_WORKER_CREDENTIAL", str(credential))
    assert Worker("unit").credential == credential
    given = WorkerCredential.generate("user_arg", "workercredential_arg")
    assert Worker("unit", credential=str(given)).credential == given
