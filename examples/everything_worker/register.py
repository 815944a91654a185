"""Register the everything skillset and an MCP server integration through the REST API.

    python -m everything_worker.register --registry-url http://127.0.0.1:8000 --admin-token …

creates a user (with the admin token), the skillset with its abilities, resources and prompts, an
integration and a worker credential, then prints the MCP endpoint, its static access token and the
worker credential (each shown only this once; the worker runs with
``SKILLRELAY_WORKER_CREDENTIAL=<credential> python -m everything_worker``).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any

import httpx

from everything_worker import skillset
from everything_worker.worker import DEFAULT_SUBJECT


@dataclass(frozen=True)
class Registration:
    user_id: str
    api_key: str
    skillset_id: str
    integration_id: str
    endpoint: str
    access_token: str
    # What ``python -m everything_worker`` connects with (SKILLRELAY_WORKER_CREDENTIAL).
    worker_credential: str

    @property
    def url_with_token(self) -> str:
        """The endpoint with the token as ``?authorization=`` (how the conformance suite connects)."""
        return f"{self.endpoint}?authorization={self.access_token}"


class RegistrationError(RuntimeError):
    pass


def _post(client: httpx.Client, path: str, body: dict[str, Any], token: str) -> dict[str, Any]:
    response = client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    if response.status_code >= 400:
        raise RegistrationError(f"POST {path} answered {response.status_code}: {response.text}")
    answer: dict[str, Any] = response.json()
    return answer


def register(
    registry_url: str,
    admin_token: str,
    *,
    subject: str = DEFAULT_SUBJECT,
    name: str = "everything",
    session_mode: str = "strict",
    timeout: float = 30.0,
    static_only: bool = False,
) -> Registration:
    """``static_only``: only what needs no worker (the static abilities, resources and prompts)."""
    if static_only:
        parts = (skillset.static_abilities(), skillset.static_resources(), skillset.static_prompts())
    else:
        parts = (skillset.abilities(subject), skillset.resources(subject), skillset.prompts(subject))
    with httpx.Client(base_url=registry_url.rstrip("/"), timeout=timeout) as client:
        user = _post(client, "/api/v1/user/create", {"name": f"{name}-owner"}, admin_token)
        key = user["apiKey"]
        created = _post(
            client,
            "/api/v1/skillset/create",
            {"name": name, "description": "Everything the MCP conformance suite asks a server for"},
            key,
        )
        skillset_id = created["id"]
        abilities, resources, prompts = parts
        for ability in abilities:
            _post(client, f"/api/v1/skillset/{skillset_id}/ability/create", ability, key)
        for resource in resources:
            _post(client, f"/api/v1/skillset/{skillset_id}/resource/create", resource, key)
        for prompt in prompts:
            _post(client, f"/api/v1/skillset/{skillset_id}/prompt/create", prompt, key)
        integration = _post(
            client,
            "/api/v1/integration/mcpserver/create",
            {
                "name": name,
                "description": "The everything example as an MCP server",
                "skillsetId": skillset_id,
                "sessionMode": session_mode,
            },
            key,
        )
        credential = _post(client, "/api/v1/worker/credential/create", {"name": f"{name} worker"}, key)
    return Registration(
        user_id=user["id"],
        api_key=key,
        skillset_id=skillset_id,
        integration_id=integration["id"],
        endpoint=integration["endpoint"],
        access_token=integration["accessToken"],
        worker_credential=credential["credential"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="everything_worker.register", description=__doc__)
    parser.add_argument(
        "--registry-url", default=os.environ.get("SKILLRELAY_REGISTRY_PUBLIC_URL", "http://127.0.0.1:8000")
    )
    parser.add_argument("--admin-token", default=os.environ.get("SKILLRELAY_ADMIN_TOKEN"))
    parser.add_argument("--subject", default=os.environ.get("SKILLRELAY_WORKER_SUBJECT", DEFAULT_SUBJECT))
    args = parser.parse_args()
    if not args.admin_token:
        parser.error("--admin-token (or SKILLRELAY_ADMIN_TOKEN) is required; `make run` prints it")
    try:
        registration = register(args.registry_url, args.admin_token, subject=args.subject)
    except (RegistrationError, httpx.HTTPError) as exc:
        print(f"registration failed: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"endpoint:     {registration.endpoint}")
    print(f"access token: {registration.access_token}")
    print(f"owner API key: {registration.api_key}")
    print(f"worker credential: {registration.worker_credential}")
    variable = f"SKILLRELAY_WORKER_CREDENTIAL='{registration.worker_credential}'"
    print(f"run the worker: {variable} python -m everything_worker")
    print(
        "conformance:  npx @modelcontextprotocol/conformance@0.2.0-alpha.12 server --requirements 2026-07-28 "
        f"--url '{registration.url_with_token}'"
    )


if __name__ == "__main__":
    main()
