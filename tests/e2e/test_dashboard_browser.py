"""The dashboard clicked through in a real browser (Debian's headless Chromium driven by Playwright)
against the whole stack: sign in → create a skillset and a static ability → create an MCP server →
copy its token → call the endpoint with the official MCP Python SDK → see the live session and the
audit stream → rotate → the old token is refused → delete.

Screenshots of the main pages are written to ``docs/`` when ``SKILLRELAY_DASHBOARD_SCREENSHOTS=1``
(``make screenshots`` style refresh; a normal run leaves the repository untouched).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from playwright.async_api import Browser, Page, expect

from skillrelay_devstack.raw_mcp import initialize_request
from skillrelay_devstack.stack import Stack

# The whole stack plus a browser on a shared 2-core machine: more than the default 120 s budget.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(360)]

DOCS = Path(__file__).resolve().parents[2] / "docs"
TIMEOUT_MS = 15_000
REDACTED = "sr_mcp_••••••••••••••••(redacted in this screenshot)"


async def screenshot(page: Page, name: str) -> None:
    if os.environ.get("SKILLRELAY_DASHBOARD_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        # caret="initial": hiding the caret would inject a style the page's CSP (rightly) blocks.
        await page.screenshot(path=str(DOCS / f"dashboard-{name}.png"), full_page=True, caret="initial")


async def redact(page: Page, token: str) -> None:
    """Only for screenshots: the token is replaced in the page's text before the picture is taken."""
    await page.evaluate(
        """([token, shown]) => document.querySelectorAll("code").forEach(el => {
            if (el.textContent.includes(token)) { el.textContent = el.textContent.split(token).join(shown); }
        })""",
        [token, REDACTED],
    )


async def call_greet(endpoint: str, token: str, page: Page | None = None, dashboard_url: str = "") -> str:
    """The official MCP SDK client: initialize, list tools, call ``greet``. With a page, the
    integration page is reloaded while the session is open, so it shows the live session."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        streamable_http_client(endpoint, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        assert [tool.name for tool in tools.tools] == ["greet"]
        result = await session.call_tool("greet", {"name": "Ada"})
        assert not result.is_error
        text = result.content[0].text  # type: ignore[union-attr]
        if page is not None:
            await page.goto(dashboard_url)
            sessions = page.get_by_role("region", name="Live sessions")
            await expect(sessions).to_contain_text("static:v1", timeout=TIMEOUT_MS)
            audit_rows = page.locator("[data-audit-rows]")
            await expect(audit_rows).to_contain_text("session.opened")  # recorded by the sessions service
            await expect(audit_rows).to_contain_text("tool.call")  # recorded by the edge
            await assert_labelled(page)
            await screenshot(page, "integration")
        return str(text)


async def ping_status(endpoint: str, token: str) -> int:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            endpoint,
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
        )
        return response.status_code


MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def open_session(endpoint: str, token: str) -> str:
    """A raw MCP session (initialize + initialized); returns its ``Mcp-Session-Id``."""
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    initialize = initialize_request(request_id=1)
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(endpoint, json=initialize, headers=headers)
        assert response.status_code == 200, response.text
        session_id = response.headers["mcp-session-id"]
        headers |= {"Mcp-Session-Id": session_id, "MCP-Protocol-Version": "2025-11-25"}
        initialized = await http.post(
            endpoint, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
        )
        assert initialized.status_code == 202, initialized.text
        return session_id


async def ping_in_session(endpoint: str, token: str, session_id: str) -> int:
    headers = {
        **MCP_HEADERS,
        "Authorization": f"Bearer {token}",
        "Mcp-Session-Id": session_id,
        "MCP-Protocol-Version": "2025-11-25",
    }
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            endpoint, json={"jsonrpc": "2.0", "id": 2, "method": "ping"}, headers=headers
        )
        return response.status_code


async def assert_labelled(page: Page) -> None:
    """Every visible form control has a label (accessibility)."""
    unlabelled = await page.evaluate(
        """() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
            .filter(el => !(el.id && document.querySelector(`label[for="${el.id}"]`))
                && !el.getAttribute("aria-label"))
            .map(el => el.name)"""
    )
    assert unlabelled == []


def create_user(stack: Stack) -> str:
    response = httpx.post(
        f"{stack.registry_url}/api/v1/user/create",
        json={"name": "dashboard-owner"},
        headers={"Authorization": f"Bearer {stack.admin_token}"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["apiKey"])


async def test_click_through_create_copy_call_rotate_delete(stack: Stack, browser: Browser) -> None:
    api_key = create_user(stack)
    dashboard = f"{stack.registry_url}/dashboard"
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.registry_url)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(f"{message.text} at {message.location}") if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))

    # Sign in with the keyboard only: the key field has focus, Enter submits.
    await page.goto(f"{dashboard}/")
    await expect(page).to_have_url(f"{dashboard}/signin")
    await expect(page.get_by_label("API key")).to_be_focused()
    await assert_labelled(page)
    await screenshot(page, "signin")
    await page.keyboard.type(api_key)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{dashboard}/skillsets")
    assert api_key not in page.url
    cookies = await context.cookies()
    session_cookie = next(cookie for cookie in cookies if cookie["name"] == "skillrelay_dashboard")
    assert session_cookie["httpOnly"] and session_cookie["sameSite"] == "Strict"
    assert api_key not in session_cookie["value"]

    # A skillset with one static ability; the JSON Schema gets live validation feedback.
    create = page.get_by_role("form", name="New skillset")
    await create.get_by_label("Name").fill("Greetings")
    await create.get_by_label("Description").fill("Friendly tools")
    await create.get_by_role("button", name="Create skillset").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Greetings")
    await page.get_by_role("link", name="Add ability").click()
    await page.get_by_label("Tool name").fill("greet")
    await page.get_by_label("Description").fill("Greets someone by name")
    schema = page.get_by_label("Input schema (JSON Schema)")
    await schema.fill('{"type": "object", "properties": {"name": {"type": 7}}}')
    await expect(page.locator("#live-inputSchema")).to_contain_text("not a valid JSON Schema")
    await assert_labelled(page)
    await screenshot(page, "ability-validation")
    await schema.fill('{"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}')
    await expect(page.locator("#live-inputSchema")).to_have_text("✓ valid")
    await page.get_by_role("button", name="Create ability").click()
    await expect(page.get_by_role("link", name="greet", exact=True)).to_be_visible()
    await assert_labelled(page)
    await screenshot(page, "skillset")

    # An MCP server for it: the token is shown once, with copy buttons and client configurations.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="MCP servers").click()
    form = page.get_by_role("form", name="New MCP server")
    await assert_labelled(page)
    await form.get_by_label("Name").fill("Greeter")
    await form.get_by_label("Skillset").select_option(label="Greetings")
    await form.get_by_role("button", name="Create MCP server").click()
    await expect(page.get_by_text("shown only this once")).to_be_visible()
    token = (await page.locator("#access-token").text_content() or "").strip()
    endpoint = (await page.locator("#endpoint").text_content() or "").strip()
    assert token.startswith("sr_") and endpoint.startswith(stack.edge_urls[0])
    assert token not in page.url
    await page.get_by_role("button", name="Copy token").click()
    await expect(page.get_by_role("status").filter(has_text="Copied")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == token
    config = await page.locator("#config-cursor").text_content() or ""
    assert f'"Authorization": "Bearer {token}"' in config and f'"url": "{endpoint}"' in config
    await redact(page, token)
    await screenshot(page, "token")
    await page.reload()  # shown once: the page reached by the redirect does not show it again
    await expect(page.get_by_role("heading", level=1)).to_have_text("The access token was shown once")
    assert token not in await page.content()

    # The copied token works with the official MCP Python SDK; the page shows the live session.
    integration_url = f"{dashboard}/integrations/" + endpoint.split("/mcpserver/")[1].split("/")[0]
    assert await call_greet(endpoint, token, page, integration_url) == "Hello, Ada!"
    # The SDK client ended its session on exit: the audit stream says so and the table follows.
    await expect(page.locator("[data-audit-rows]")).to_contain_text("session.closed")
    await expect(page.get_by_role("region", name="Live sessions")).to_contain_text("No live sessions.")

    # Rotate (confirm first): the new token is shown once and the old one is refused at once.
    await page.get_by_role("link", name="Rotate access token…").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Rotate the access token")
    await page.get_by_role("button", name="Rotate token").click()
    await expect(page.get_by_text("The previous token no longer works")).to_be_visible()
    new_token = (await page.locator("#access-token").text_content() or "").strip()
    assert new_token and new_token != token
    assert await ping_status(endpoint, token) == 401
    assert await call_greet(endpoint, new_token) == "Hello, Ada!"

    # A live session is listed and can be ended from the page: the client then gets 404 for it.
    session_id = await open_session(endpoint, new_token)
    assert await ping_in_session(endpoint, new_token, session_id) == 200
    await page.goto(integration_url)
    live_sessions = page.get_by_role("region", name="Live sessions")
    session_row = live_sessions.get_by_role("row").filter(has_text=session_id[:10])
    await session_row.get_by_role("button", name=f"End session {session_id[:10]}").click()
    await expect(page).to_have_url(integration_url)
    await expect(live_sessions.get_by_role("row").filter(has_text=session_id[:10])).to_have_count(0)
    assert await ping_in_session(endpoint, new_token, session_id) == 404

    # Delete (confirm first): the integration is gone and its token refused.
    await page.goto(integration_url)
    await page.get_by_role("link", name="Delete MCP server…").click()
    await page.get_by_role("button", name="Delete integration").click()
    await expect(page).to_have_url(f"{dashboard}/integrations")
    await expect(page.get_by_text("No MCP servers yet.")).to_be_visible()
    assert await ping_status(endpoint, new_token) in {401, 404}
    assert problems == [], "\n".join(problems)
    await context.close()

    # Without JavaScript the same pages work as plain forms (CSRF field, 303 after POST).
    plain = await browser.new_context(java_script_enabled=False)
    page = await plain.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{dashboard}/signin")
    await page.get_by_label("API key").fill(api_key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{dashboard}/skillsets")
    await page.get_by_role("form", name="New skillset").get_by_label("Name").fill("Made without JavaScript")
    await page.get_by_role("button", name="Create skillset").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Made without JavaScript")
    await plain.close()


def test_chromium_is_the_debian_build(chromium: Path) -> None:
    version = subprocess.run(
        [str(chromium), "--version"], capture_output=True, text=True, check=True, timeout=60
    )
    assert re.search(r"Chromium \d+.*Debian", version.stdout), version.stdout
