"""Ready-to-paste client configurations for a new (or rotated) access token. Pure functions.

Without an OAuth connection the token goes in ``Authorization: Bearer``. With one, the token travels in
the ``?authorization=`` query of the endpoint and the client's own OAuth flow supplies the
``Authorization`` header (DESIGN.md §3), so the configurations carry no header then.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class ClientConfig:
    id: str  # element id, for the copy button
    title: str
    where: str
    text: str


def server_key(name: str) -> str:
    """A configuration key for the integration: lower-case letters, digits and dashes."""
    key = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return key or "skillrelay"


def client_configs(name: str, endpoint: str, token: str, *, oauth: bool) -> list[ClientConfig]:
    key = server_key(name)
    url = f"{endpoint}?authorization={quote(token, safe='')}" if oauth else endpoint
    headers = {} if oauth else {"Authorization": f"Bearer {token}"}
    entry: dict[str, object] = {"url": url, **({"headers": headers} if headers else {})}
    vscode_entry: dict[str, object] = {"type": "http", **entry}
    claude_code = ["claude", "mcp", "add", "--transport", "http", key, url]
    if headers:
        claude_code += ["--header", f"Authorization: Bearer {token}"]
    header_line = "" if oauth else f"    headers={{'Authorization': 'Bearer {token}'}},  # the access token\n"
    python = (
        "import anyio, httpx2\n"
        "from mcp import ClientSession\n"
        "from mcp.client.streamable_http import streamable_http_client\n\n"
        "async def main():\n"
        "    async with httpx2.AsyncClient(\n"
        f"{header_line}"
        "    ) as http, streamable_http_client(\n"
        f"        {url!r}, http_client=http\n"
        "    ) as (read, write), ClientSession(read, write) as session:\n"
        "        await session.initialize()\n"
        "        print(await session.list_tools())\n\n"
        "anyio.run(main)\n"
    )
    return [
        ClientConfig(
            "config-mcpservers",
            "mcpServers entry",
            "Cursor (.cursor/mcp.json), Claude Code (.mcp.json), Windsurf and other clients that read "
            "an mcpServers map",
            json.dumps({"mcpServers": {key: entry}}, indent=2),
        ),
        ClientConfig(
            "config-vscode",
            "VS Code",
            ".vscode/mcp.json",
            json.dumps({"servers": {key: vscode_entry}}, indent=2),
        ),
        ClientConfig("config-claude-code", "Claude Code command", "a terminal", shlex.join(claude_code)),
        ClientConfig("config-python", "MCP Python SDK", "a Python script (mcp 2.x)", python),
    ]
