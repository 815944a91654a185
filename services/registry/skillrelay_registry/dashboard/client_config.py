"""Ready-to-paste client configurations for an MCP server, and one-click install links. Pure functions.

Without an OAuth connection the token goes in ``Authorization: Bearer``. With one, the token travels in
the ``?authorization=`` query of the endpoint and the client's own OAuth flow supplies the
``Authorization`` header (DESIGN.md §3), so the configurations carry no header then.

The token is known only right after it was created or rotated (shown once). Everywhere else the
configurations hold ``TOKEN_PLACEHOLDER`` where it goes; install links never carry it: the Cursor link
reads it from an environment variable (``${env:…}``) and the VS Code link asks for it when the server
first starts (``${input:…}``, stored in VS Code's secret storage).
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from dataclasses import dataclass
from urllib.parse import quote

TOKEN_PLACEHOLDER = "<ACCESS_TOKEN>"


@dataclass(frozen=True)
class ClientConfig:
    id: str  # element id, for the copy button
    title: str
    where: str
    text: str


@dataclass(frozen=True)
class InstallLink:
    id: str
    title: str
    url: str
    note: str


def server_key(name: str) -> str:
    """A configuration key for the integration: lower-case letters, digits and dashes."""
    key = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return key or "skillrelay"


def token_variable(name: str) -> str:
    """The environment variable the Cursor install link reads the token from."""
    return "SKILLRELAY_" + server_key(name).upper().replace("-", "_") + "_TOKEN"


def _url(endpoint: str, token: str, oauth: bool) -> str:
    if not oauth:
        return endpoint
    return f"{endpoint}?authorization={token if token == TOKEN_PLACEHOLDER else quote(token, safe='')}"


def client_configs(name: str, endpoint: str, token: str | None, *, oauth: bool) -> list[ClientConfig]:
    """Configurations for Claude Desktop (through ``mcp-remote``), Claude Code, Cursor, VS Code,
    Windsurf and the Python and TypeScript SDKs; ``token=None`` writes ``TOKEN_PLACEHOLDER``."""
    token = token or TOKEN_PLACEHOLDER
    key = server_key(name)
    url = _url(endpoint, token, oauth)
    headers = {} if oauth else {"Authorization": f"Bearer {token}"}
    with_headers: dict[str, object] = {"headers": headers} if headers else {}
    return [
        ClientConfig(
            "config-claude-desktop",
            "Claude Desktop",
            "claude_desktop_config.json, through mcp-remote (needs Node.js)",
            json.dumps({"mcpServers": {key: _mcp_remote(url, token, oauth)}}, indent=2),
        ),
        ClientConfig("config-claude-code", "Claude Code", "a terminal", _claude_code(key, url, token, oauth)),
        ClientConfig(
            "config-cursor",
            "Cursor",
            "~/.cursor/mcp.json or .cursor/mcp.json",
            json.dumps({"mcpServers": {key: {"url": url, **with_headers}}}, indent=2),
        ),
        ClientConfig(
            "config-vscode",
            "VS Code",
            ".vscode/mcp.json",
            json.dumps({"servers": {key: {"type": "http", "url": url, **with_headers}}}, indent=2),
        ),
        ClientConfig(
            "config-windsurf",
            "Windsurf",
            "~/.codeium/windsurf/mcp_config.json",
            json.dumps({"mcpServers": {key: {"serverUrl": url, **with_headers}}}, indent=2),
        ),
        ClientConfig(
            "config-python", "MCP Python SDK", "a Python script (mcp 2.x)", _python(url, token, oauth)
        ),
        ClientConfig(
            "config-typescript",
            "MCP TypeScript SDK",
            "a Node.js module (@modelcontextprotocol/sdk)",
            _typescript(url, token, oauth),
        ),
    ]


def install_links(name: str, endpoint: str, *, oauth: bool) -> list[InstallLink]:
    """One-click installs (Cursor's and VS Code's documented deeplinks), never carrying the token. None
    for an OAuth-gated server: its token sits in the URL, which these links cannot ask for."""
    if oauth:
        return []
    key = server_key(name)
    variable = token_variable(name)
    cursor_entry = {"url": endpoint, "headers": {"Authorization": f"Bearer ${{env:{variable}}}"}}
    cursor_config = base64.b64encode(json.dumps(cursor_entry, separators=(",", ":")).encode()).decode()
    input_id = f"{key}-token"
    vscode = {
        "name": key,
        "type": "http",
        "url": endpoint,
        "headers": {"Authorization": f"Bearer ${{input:{input_id}}}"},
        "inputs": [
            {
                "id": input_id,
                "type": "promptString",
                "description": f"Access token of the MCP server {name}",
                "password": True,
            }
        ],
    }
    return [
        InstallLink(
            "install-cursor",
            "Add to Cursor",
            f"cursor://anysphere.cursor-deeplink/mcp/install?name={quote(key)}&config={quote(cursor_config)}",
            f"Cursor reads the token from the environment variable {variable}: "
            "set it before starting Cursor.",
        ),
        InstallLink(
            "install-vscode",
            "Add to VS Code",
            "vscode:mcp/install?" + quote(json.dumps(vscode, separators=(",", ":")), safe=""),
            "VS Code asks for the token when the server first starts and keeps it in its secret storage.",
        ),
    ]


def _mcp_remote(url: str, token: str, oauth: bool) -> dict[str, object]:
    if oauth:
        return {"command": "npx", "args": ["-y", "mcp-remote", url]}
    # mcp-remote's documented form: no space inside an argument (Claude Desktop on Windows splits them).
    return {
        "command": "npx",
        "args": ["-y", "mcp-remote", url, "--header", "Authorization:${AUTH_HEADER}"],
        "env": {"AUTH_HEADER": f"Bearer {token}"},
    }


def _claude_code(key: str, url: str, token: str, oauth: bool) -> str:
    command = ["claude", "mcp", "add", "--transport", "http", key, url]
    if not oauth:
        command += ["--header", f"Authorization: Bearer {token}"]
    return shlex.join(command)


def _python(url: str, token: str, oauth: bool) -> str:
    header_line = "" if oauth else f"    headers={{'Authorization': 'Bearer {token}'}},  # the access token\n"
    return (
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


def _typescript(url: str, token: str, oauth: bool) -> str:
    bearer = json.dumps(f"Bearer {token}")
    options = "" if oauth else f",\n  {{ requestInit: {{ headers: {{ Authorization: {bearer} }} }} }}"
    return (
        'import { Client } from "@modelcontextprotocol/sdk/client/index.js";\n'
        "import { StreamableHTTPClientTransport }\n"
        '  from "@modelcontextprotocol/sdk/client/streamableHttp.js";\n\n'
        "const transport = new StreamableHTTPClientTransport(\n"
        f"  new URL({json.dumps(url)}){options}\n"
        ");\n"
        'const client = new Client({ name: "my-client", version: "1.0.0" });\n'
        "await client.connect(transport);\n"
        "console.log(await client.listTools());\n"
    )
