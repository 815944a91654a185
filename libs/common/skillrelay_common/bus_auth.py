"""Who may use the bus: the nats-server authorization that both stacks run (DESIGN.md section 5).

Two kinds of identity, in one account (``SKILLRELAY``):

- **services** connect as the configured user ``skillrelay`` and may use every subject;
- **workers** connect with a worker credential (user = credential id, password = its secret). The
  server does not know them: it asks the auth service (NATS *auth callout*, ``$SYS.REQ.USER.AUTH``),
  which checks the credential and answers with a user JWT, signed by the callout issuer key, that
  allows only its owner's worker subjects (``skillrelay_common.subjects.worker_permissions``).

The system account (``SYS``, user ``system``) lets the auth service find and disconnect the workers of
a rotated or deleted credential. Anyone else is refused. See docs/security.md.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from skillrelay_common import nkey
from skillrelay_worker.credential import with_user

__all__ = ["with_user"]

APP_ACCOUNT = "SKILLRELAY"
SYSTEM_ACCOUNT = "SYS"
SERVICE_USER = "skillrelay"
SYSTEM_USER = "system"


def _password() -> str:
    # Letters and digits only, starting with a letter: read verbatim by nats-server's configuration
    # parser also from an environment variable (docker/nats/nats.conf), where "-1…" could be a number,
    # and safe inside a route URL.
    return "pw" + secrets.token_hex(32)


@dataclass(frozen=True)
class BusSecrets:
    """The secrets of one deployment's bus: the services' password, the system user's password, and
    the seed of the account key that signs worker identities (only the auth service holds it)."""

    service_password: str
    system_password: str
    callout_seed: str
    # What the nodes of a NATS cluster (docker-compose.yml) ask of each other's routes; `make run`'s
    # single node has no routes and does not keep it.
    route_password: str = field(default_factory=lambda: _password())

    @classmethod
    def generate(cls) -> BusSecrets:
        return cls(
            service_password=_password(),
            system_password=_password(),
            callout_seed=nkey.KeyPair.create(nkey.ACCOUNT).seed,
        )

    @classmethod
    def load_or_create(cls, path: Path) -> BusSecrets:
        """Kept in ``path`` (owner-only) so a restarted ``make run`` keeps its credentials."""
        if path.exists():
            data = json.loads(path.read_text())
            return cls(data["service_password"], data["system_password"], data["callout_seed"])
        created = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(
            json.dumps(
                {
                    "service_password": created.service_password,
                    "system_password": created.system_password,
                    "callout_seed": created.callout_seed,
                }
            )
        )
        return created

    @property
    def callout_issuer(self) -> str:
        return nkey.KeyPair.from_seed(self.callout_seed).public_key


def server_config(issuer: str, service_password: str, system_password: str) -> str:
    """The nats-server configuration block of the authorization (values are config literals or
    ``$VARIABLE`` references, as docker/nats/nats.conf uses)."""
    return f"""accounts {{
  {APP_ACCOUNT} {{
    jetstream: enabled
    users: [ {{ user: {SERVICE_USER}, password: {service_password} }} ]
  }}
  {SYSTEM_ACCOUNT} {{
    users: [ {{ user: {SYSTEM_USER}, password: {system_password} }} ]
  }}
}}
system_account: {SYSTEM_ACCOUNT}
authorization {{
  auth_callout {{
    issuer: {issuer}
    account: {APP_ACCOUNT}
    auth_users: [ {SERVICE_USER}, {SYSTEM_USER} ]
  }}
}}
"""


def embedded_server_config(bus: BusSecrets) -> str:
    return server_config(
        json.dumps(bus.callout_issuer), json.dumps(bus.service_password), json.dumps(bus.system_password)
    )


def without_user(url: str) -> str:
    """``url`` without user and password (to show or log it)."""
    parts = []
    for server in (part.strip() for part in url.split(",")):
        if server:
            split = urlsplit(server)
            host = split.netloc.rpartition("@")[2]
            parts.append(urlunsplit((split.scheme, host, split.path, split.query, split.fragment)))
    return ",".join(parts)


def service_url(url: str, bus: BusSecrets) -> str:
    return with_user(url, SERVICE_USER, bus.service_password)


def system_url(url: str, bus: BusSecrets) -> str:
    return with_user(url, SYSTEM_USER, bus.system_password)
