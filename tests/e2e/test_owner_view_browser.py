"""The owner's view in a real browser (Debian's Chromium driven by Playwright) against the whole stack:
usage charts fed by real MCP calls, client configurations and install links, sessions with their
client names, and the Try-it panel calling the real edge.

Screenshots go to ``docs/owner-*.png`` when ``SKILLRELAY_DASHBOARD_SCREENSHOTS=1``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from playwright.async_api import Browser, Page, expect

from skillrelay_devstack.raw_mcp import initialize_request
from skillrelay_devstack.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 15_000


async def screenshot(page: Page, name: str, selector: str | None = None) -> None:
    if os.environ.get("SKILLRELAY_DASHBOARD_SCREENSHOTS") != "1":
        return
    path = str(ROOT / "docs" / f"owner-{name}.png")
    if selector is None:
        await page.screenshot(path=path, full_page=True, caret="initial")
    else:
        await page.locator(selector).screenshot(path=path, caret="initial")


class Owner:
    """The REST side of one owner: a skillset with tools, an MCP server and its token."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        created = httpx.post(
            f"{stack.registry_url}/api/v1/user/create",
            json={"name": "Ada Lovelace"},
            headers={"Authorization": f"Bearer {stack.admin_token}"},
        )
        assert created.status_code == 200, created.text
        self.api_key = str(created.json()["apiKey"])
        self.headers = {"Authorization": f"Bearer {self.api_key}"}

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = httpx.post(f"{self.stack.registry_url}/api/v1{path}", json=body, headers=self.headers)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def get(self, path: str, **params: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.stack.registry_url}/api/v1{path}", params=params, headers=self.headers)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def server(self) -> tuple[str, str, str]:
        """A skillset (greet, fail, a resource and a prompt) and its MCP server: (id, endpoint, token)."""
        skillset = self.post("/skillset/create", {"name": "Greetings", "description": "Friendly tools"})["id"]
        self.post(
            f"/skillset/{skillset}/ability/create",
            {
                "name": "greet",
                "description": "Greets someone by name",
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "description": "who to greet"},
                        "excited": {"type": "boolean"},
                        "times": {"type": "integer", "minimum": 1},
                        "mood": {"type": "string", "enum": ["calm", "cheerful"]},
                    },
                    "required": ["name"],
                },
                "handler": {"type": "static", "content": [{"type": "text", "text": "Hello, {{name}}!"}]},
            },
        )
        self.post(
            f"/skillset/{skillset}/ability/create",
            {
                "name": "fail",
                "description": "Always fails",
                "inputSchema": {"type": "object"},
                "handler": {"type": "static", "content": [{"type": "text", "text": "no"}], "isError": True},
            },
        )
        self.post(
            f"/skillset/{skillset}/resource/create",
            {"name": "readme", "uri": "docs://readme", "mimeType": "text/plain", "text": "Read me first."},
        )
        self.post(
            f"/skillset/{skillset}/prompt/create",
            {
                "name": "cite",
                "description": "Cite a document",
                "arguments": [{"name": "resourceUri", "required": True}],
                "messages": [
                    {
                        "role": "user",
                        "content": {
                            "type": "resource",
                            "resource": {"uri": "{{resourceUri}}", "text": "see"},
                        },
                    }
                ],
            },
        )
        created = self.post(
            "/integration/mcpserver/create", {"name": "Greeter", "description": "", "skillsetId": skillset}
        )
        return str(created["id"]), str(created["endpoint"]), str(created["accessToken"])


async def use_server(endpoint: str, token: str, client_name: str) -> None:
    """The official MCP Python SDK as a client named ``client_name``: a few calls, one failing."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        streamable_http_client(endpoint, http_client=http) as (read, write),
        ClientSession(read, write, client_info=_client_info(client_name)) as session,
    ):
        await session.initialize()
        for name in ("Ada", "Grace", "Edsger"):
            result = await session.call_tool("greet", {"name": name})
            assert not result.is_error
        assert (await session.call_tool("fail", {})).is_error


def _client_info(name: str) -> Any:
    from mcp import types

    return types.Implementation(name=name, version="9.8.7")


async def usage_with(owner: Owner, integration: str, tool_calls: dict[str, int]) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        while True:
            figures = owner.get(f"/integration/mcpserver/{integration}/usage", window="1h")
            if {t["name"]: t["calls"] for t in figures["tools"]} == tool_calls:
                return figures
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(poll(), 30)


async def signed_in(browser: Browser, stack: Stack, api_key: str) -> tuple[Page, list[str]]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.registry_url)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    # A form answered 422 (its validation message) is logged by Chromium as a failed load: expected.
    expected = "the server responded with a status of 422"
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.text} at {m.location}")
            if m.type == "error" and expected not in m.text
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    await page.goto(f"{stack.registry_url}/dashboard/signin")
    await page.get_by_label("API key").fill(api_key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{stack.registry_url}/dashboard/skillsets")
    return page, problems


async def test_usage_and_connecting_a_client(stack: Stack, browser: Browser) -> None:
    owner = Owner(stack)
    integration, endpoint, token = owner.server()
    await use_server(endpoint, token, "usage-client")
    page, problems = await signed_in(browser, stack, owner.api_key)
    # The header names the user, not its id.
    await expect(page.locator(".topbar .owner")).to_have_text("Signed in as Ada Lovelace")

    # The registry reads the audit stream asynchronously: wait until the REST figures have every call.
    figures = await usage_with(owner, integration, {"greet": 3, "fail": 1})
    calls = figures["totals"]["calls"]
    assert figures["totals"]["errors"] == 1 and calls >= 5  # initialize and the four tool calls at least

    # The list shows the last hour's calls, errors and p95 per server.
    dashboard = f"{stack.registry_url}/dashboard"
    await page.goto(f"{dashboard}/integrations")
    row = page.get_by_role("row").filter(has_text="Greeter")
    await expect(row.locator("td").nth(3)).to_have_text("0")  # live sessions: the SDK client ended its own
    await expect(row.locator("td").nth(4)).to_have_text(str(calls))
    await expect(row.locator("td").nth(5)).to_have_text("1")
    await screenshot(page, "list")

    # The server page: usage chart and per-tool table, the same figures as the REST call.
    await page.goto(f"{dashboard}/integrations/{integration}")
    usage = page.get_by_role("region", name="Usage")
    tools = usage.get_by_role("table")
    await expect(tools.get_by_role("row").filter(has_text="greet")).to_contain_text("3")
    await expect(tools.get_by_role("row").filter(has_text="fail")).to_contain_text("100.0 %")
    await expect(usage.locator("[data-usage-summary]")).to_contain_text(f"{figures['totals']['calls']} calls")
    assert await usage.locator("svg.usage-chart rect.calls").count() >= 1
    assert await usage.locator("svg.usage-chart rect.errors").count() >= 1
    await screenshot(page, "usage-hour", "#usage-section")
    await usage.get_by_role("link", name="Last day").click()
    await expect(usage.get_by_role("link", name="Last day")).to_have_attribute("aria-current", "true")
    await expect(tools.get_by_role("row").filter(has_text="greet")).to_contain_text("3")
    await screenshot(page, "usage-day", "#usage-section")

    # Client configurations at any time, with a placeholder for the token; copy works.
    connect = page.get_by_role("region", name="Connect a client")
    claude_code = connect.locator("#config-claude-code")
    await connect.get_by_text("Claude Code", exact=True).click()  # open its <details>
    await expect(claude_code).to_contain_text("--header 'Authorization: Bearer <ACCESS_TOKEN>'")
    assert token not in await page.content()
    box = await claude_code.evaluate("e => [e.parentElement.scrollWidth, e.parentElement.clientWidth]")
    assert box[0] <= box[1], "the long claude mcp add command wraps inside its box"
    await connect.get_by_role("button", name="Copy the Claude Code configuration").click()
    clipboard = await page.evaluate("navigator.clipboard.readText()")
    assert clipboard.startswith("claude mcp add --transport http greeter ") and endpoint in clipboard

    # One-click installs in the clients' documented deeplink formats, without the token.
    cursor = urlsplit(await connect.get_by_role("link", name="Add to Cursor").get_attribute("href") or "")
    assert (cursor.scheme, cursor.netloc, cursor.path) == (
        "cursor",
        "anysphere.cursor-deeplink",
        "/mcp/install",
    )
    cursor_config = json.loads(base64.b64decode(parse_qs(cursor.query)["config"][0]))
    assert cursor_config["url"] == endpoint and "${env:" in cursor_config["headers"]["Authorization"]
    vscode = await connect.get_by_role("link", name="Add to VS Code").get_attribute("href") or ""
    assert json.loads(unquote(vscode.partition("?")[2]))["url"] == endpoint
    await screenshot(page, "connect", "#connect")

    # The audit stream, filtered by kind, outcome and tool, with readable details.
    audit = page.get_by_role("region", name="Live audit stream")
    rows = audit.locator("[data-audit-rows] tr")
    await expect(rows.filter(has_text="tool: fail")).to_have_count(1)
    await expect(rows.filter(has_text="method: tools/call · tool: greet")).to_have_count(3)
    await audit.get_by_label("Kind").select_option("tool.call")
    await expect(audit.locator("[data-audit-rows] tr:visible")).to_have_count(4)
    await audit.get_by_label("Outcome").select_option("failed")
    await expect(audit.locator("[data-audit-rows] tr:visible")).to_have_count(1)
    await expect(audit.locator("[data-audit-rows] tr:visible")).to_contain_text("is_error")
    await audit.get_by_label("Outcome").select_option("")
    await audit.get_by_label("Tool").fill("gre")
    await expect(audit.locator("[data-audit-rows] tr:visible")).to_have_count(3)
    await screenshot(page, "audit", "#audit-section")

    # Search across skillsets, abilities and servers from the top bar.
    await page.get_by_role("search", name="Search").get_by_role("searchbox").fill("greet")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Search")
    found = page.get_by_role("region", name="Abilities (1)")
    await expect(found.get_by_role("link", name="greet")).to_be_visible()
    await expect(page.get_by_role("region", name="MCP servers (1)")).to_contain_text("Greeter")
    await screenshot(page, "search")
    await found.get_by_role("link", name="greet").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("greet")
    assert problems == [], "\n".join(problems)


async def test_try_it_through_the_real_edge(stack: Stack, browser: Browser) -> None:
    owner = Owner(stack)
    integration, _, token = owner.server()
    page, problems = await signed_in(browser, stack, owner.api_key)
    await page.goto(f"{stack.registry_url}/dashboard/integrations/{integration}")
    panel = page.get_by_role("region", name="Try it")
    result = panel.locator("#try-result")
    send = panel.get_by_role("button", name="Send")

    # A form made from greet's input schema: text, checkbox, number, choice.
    await expect(panel.get_by_label("Tool, resource or prompt")).to_have_value("tool:greet")
    await expect(panel.get_by_label("excited")).to_have_attribute("type", "checkbox")
    await expect(panel.get_by_label("times")).to_have_attribute("type", "number")
    await expect(panel.get_by_label("mood")).to_contain_text("cheerful")
    await panel.get_by_label("name").fill("Ada")

    # A wrong token: the edge's own 401 and its reason.
    await panel.get_by_label("Access token").fill("sr_mcp_wrong")
    await send.click()
    await expect(result).to_contain_text("Refused (HTTP 401): Unauthorized: invalid static access token")

    # The right one: the tool answers through the real edge.
    await panel.get_by_label("Access token").fill(token)
    await panel.get_by_label("times").fill("2")
    await panel.get_by_label("mood").select_option("cheerful")
    await send.click()
    await expect(result).to_contain_text("Hello, Ada!")
    await expect(result).to_contain_text("Answered in")
    # The token is never written back into the page (only the field the owner typed into holds it).
    html = await page.evaluate("document.documentElement.outerHTML")
    assert token not in html
    await screenshot(page, "try", "#try-section")

    async def choose(value: str) -> None:
        await panel.get_by_label("Tool, resource or prompt").select_option(value)
        await expect(panel.locator("input[name=target]")).to_have_value(value)  # its form swapped in

    # Another tool: only the arguments are swapped, the pasted token stays.
    await choose("tool:fail")
    await expect(panel.get_by_text("No arguments.")).to_be_visible()
    assert await panel.get_by_label("Access token").input_value() == token
    await send.click()
    await expect(result).to_contain_text("The tool reported an error (isError)")

    # A resource, and a prompt whose embedded resource URI is an argument.
    await choose("resource:docs://readme")
    await send.click()
    await expect(result).to_contain_text("Read me first.")
    await choose("prompt:cite")
    await panel.get_by_label("resourceUri").fill("not a uri")
    await send.click()
    await expect(result).to_contain_text("JSON-RPC error -32602")
    await panel.get_by_label("resourceUri").fill("docs://readme")
    await send.click()
    await expect(result).to_contain_text("user docs://readme")

    # Each try was a real MCP session of a client that says who it is, and ended at once.
    figures = await usage_with(owner, integration, {"greet": 1, "fail": 1})
    assert figures["totals"]["calls"] >= 2

    # Handlers are edited with a form per kind: only the chosen kind's inputs show.
    await page.get_by_role("link", name="Greetings").first.click()
    await page.get_by_role("link", name="Add ability").click()
    handler = page.get_by_role("group", name="Handler")
    await expect(handler.get_by_label("Text the tool answers")).to_be_visible()
    await expect(handler.get_by_label("Worker subject")).to_be_hidden()
    await handler.get_by_label("Kind").select_option("worker")
    await expect(handler.get_by_label("Text the tool answers")).to_be_hidden()
    await handler.get_by_label("Worker subject").fill("greeter")
    await page.get_by_label("Tool name").fill("remote_greet")
    await screenshot(page, "handler-form", "fieldset.handler-editor")
    await page.get_by_role("button", name="Create ability").click()
    await page.get_by_role("link", name="remote_greet", exact=True).click()
    await expect(page.get_by_role("group", name="Handler").get_by_label("Kind")).to_have_value("worker")
    await expect(page.get_by_role("group", name="Handler").get_by_label("Worker subject")).to_have_value(
        "greeter"
    )
    await page.get_by_role("group", name="Handler").get_by_label("Kind").select_option("http")
    await page.get_by_label("URL").fill("https://api.example.com/greet")
    await page.get_by_label("Headers").fill("X-Api-Version: 2")
    await page.get_by_role("button", name="Save ability").click()
    await expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    skillset = owner.get("/skillset/list")["items"][0]["id"]
    abilities = owner.get(f"/skillset/{skillset}/ability/list")["items"]
    stored = next(a["handler"] for a in abilities if a["name"] == "remote_greet")
    # (POST and the 10 s timeout are the defaults, which the API leaves out.)
    expected = {"type": "http", "url": "https://api.example.com/greet", "headers": {"X-Api-Version": "2"}}
    assert stored == expected
    assert problems == [], "\n".join(problems)


async def open_session(endpoint: str, token: str, name: str, version: str) -> str:
    """A raw 2025-era session of a client that names itself and never sends DELETE (as many do)."""
    initialize = initialize_request(name, version, request_id=1)
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    async with httpx.AsyncClient(timeout=30) as http:
        opened = await http.post(endpoint, json=initialize, headers=headers)
        assert opened.status_code == 200, opened.text
        return str(opened.headers["mcp-session-id"])


async def test_sessions_name_their_clients(stack: Stack, browser: Browser) -> None:
    owner = Owner(stack)
    integration, endpoint, token = owner.server()
    await open_session(endpoint, token, "mcp-inspector", "2.12.0")
    await open_session(endpoint, token, "claude-code", "2.1.0")
    page, problems = await signed_in(browser, stack, owner.api_key)
    await page.goto(f"{stack.registry_url}/dashboard/integrations/{integration}")
    sessions = page.get_by_role("region", name="Live sessions")
    await expect(sessions.get_by_role("row").filter(has_text="mcp-inspector")).to_contain_text("2.12.0")
    await expect(sessions.get_by_role("row").filter(has_text="claude-code")).to_contain_text("2.1.0")
    listed = owner.get(f"/integration/mcpserver/{integration}/session/list")["items"]
    assert {(s["clientName"], s["clientVersion"]) for s in listed} == {
        ("mcp-inspector", "2.12.0"),
        ("claude-code", "2.1.0"),
    }
    await screenshot(page, "sessions", "#sessions-section")

    # The list counts them.
    await page.goto(f"{stack.registry_url}/dashboard/integrations")
    await expect(page.get_by_role("row").filter(has_text="Greeter").locator("td").nth(3)).to_have_text("2")

    # "End idle sessions": the form checks its number; these two are fresh, so none ends (the ending
    # itself runs against the real sessions service with a controlled clock in its own tests).
    await page.goto(f"{stack.registry_url}/dashboard/integrations/{integration}")
    clean_up = page.get_by_role("form", name="End idle sessions")
    await clean_up.get_by_label("End every session idle for more than").fill("0")
    await clean_up.get_by_role("button", name="End idle sessions").click()
    await expect(page.locator("#err-idleMinutes")).to_have_text("a whole number of minutes, from 1 to 43200")
    clean_up = page.get_by_role("form", name="End idle sessions")
    await clean_up.get_by_label("End every session idle for more than").fill("5")
    await clean_up.get_by_role("button", name="End idle sessions").click()
    await expect(page.get_by_role("status").filter(has_text="Sessions ended: 0.")).to_be_visible()
    await expect(page.get_by_role("region", name="Live sessions").get_by_role("row")).to_have_count(3)
    url = f"{stack.registry_url}/api/v1/integration/mcpserver/{integration}/session/end-idle"
    async with httpx.AsyncClient(headers=owner.headers) as rest:
        assert (await rest.post(url, json={"idleMinutes": 1})).json() == {"count": 0}
        assert (await rest.post(url, json={"idleMinutes": 0})).status_code == 400

    # Twenty sessions a page, newest first.
    await asyncio.gather(*(open_session(endpoint, token, "bulk-client", str(n)) for n in range(20)))
    await page.goto(f"{stack.registry_url}/dashboard/integrations/{integration}")
    table = page.get_by_role("region", name="Live sessions").locator("tbody tr")
    await expect(table).to_have_count(20)
    await expect(table.filter(has_text="mcp-inspector")).to_have_count(0)  # among the oldest two
    await page.get_by_role("link", name="Older sessions").click()
    await expect(table).to_have_count(2)
    await expect(table.filter(has_text="mcp-inspector")).to_have_count(1)
    await expect(page.get_by_role("link", name="Newest sessions")).to_be_visible()

    # The idle timeout and the cap are settings of the MCP server.
    edit = page.get_by_role("form", name="Edit MCP server")
    await expect(edit.get_by_label("Session idle timeout (minutes)")).to_have_value("1440")
    await edit.get_by_label("Session idle timeout (minutes)").fill("30")
    await edit.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    await expect(page.locator(".facts")).to_contain_text("end after 30 minutes unused; at most 1000 live")
    fetched = owner.get(f"/integration/mcpserver/{integration}/fetch")
    assert (fetched["sessionIdleMinutes"], fetched["maxSessions"]) == (30, 1000)
    assert problems == [], "\n".join(problems)
