"""The worker credential: what an owner gives a worker process so it may serve that owner's worker
subjects, and nothing else (docs/security.md).

Written ``sr_worker_<ownerId>.<credentialId>.<secret>``: the worker learns its namespace from it alone
and connects to NATS as user ``<credentialId>`` with password ``<secret>``; the auth service checks
the pair (auth callout) and lets the connection use only ``<ownerId>``'s worker subjects.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

PREFIX = "sr_worker_"
# The worker SDK reads the credential from here when none is passed to it.
ENVIRONMENT_VARIABLE = "SKILLRELAY_WORKER_CREDENTIAL"
SECRET_BYTES = 32  # 256 bits
# Ids become NATS subject tokens: no dots, spaces or wildcards.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{20,200}$")


class MalformedCredential(ValueError):
    """Not a worker credential (the message never repeats the secret)."""


@dataclass(frozen=True)
class WorkerCredential:
    owner_id: str
    credential_id: str
    secret: str

    def __str__(self) -> str:
        return f"{PREFIX}{self.owner_id}.{self.credential_id}.{self.secret}"

    def __repr__(self) -> str:
        return f"WorkerCredential(owner_id={self.owner_id!r}, credential_id={self.credential_id!r})"

    @classmethod
    def parse(cls, text: str) -> WorkerCredential:
        text = text.strip()
        if not text.startswith(PREFIX):
            raise MalformedCredential(f"a worker credential starts with {PREFIX!r}")
        parts = text[len(PREFIX) :].split(".")
        if len(parts) != 3 or not all(_TOKEN.match(part) for part in parts[:2]):
            raise MalformedCredential("a worker credential reads sr_worker_<ownerId>.<credentialId>.<secret>")
        if not _SECRET.match(parts[2]):
            raise MalformedCredential("the worker credential's secret is malformed")
        return cls(parts[0], parts[1], parts[2])

    def connect_url(self, nats_url: str) -> str:
        """``nats_url`` (one server or a comma-separated list) with this credential as every server's
        user and password (whatever the URL carried before is replaced)."""
        return with_user(nats_url, self.credential_id, self.secret)

    @classmethod
    def generate(cls, owner_id: str, credential_id: str) -> WorkerCredential:
        if not (_TOKEN.match(owner_id) and _TOKEN.match(credential_id)):
            raise ValueError("owner and credential ids must be subject-safe tokens")
        return cls(owner_id, credential_id, secrets.token_urlsafe(SECRET_BYTES))


def is_subject_token(value: str) -> bool:
    """True when ``value`` may stand as one token of a NATS subject (an owner or credential id)."""
    return bool(_TOKEN.match(value))


def with_user(url: str, user: str, password: str) -> str:
    """``url`` (one server or a comma-separated list) with every server's user and password set."""
    servers = []
    for server in (part.strip() for part in url.split(",")):
        if server:
            split = urlsplit(server)
            host = split.netloc.rpartition("@")[2]
            netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
            servers.append(urlunsplit((split.scheme, netloc, split.path, split.query, split.fragment)))
    return ",".join(servers)
