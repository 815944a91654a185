"""The MCP Inspector CLI (pinned in ``tests/conformance/package.json``) lists and calls the everything
example's tools, resources and prompts through the whole stack, with the static token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from everything_worker import node_tools
from skillrelay_devstack.everything import Deployment
from skillrelay_devstack.testing import EverythingStarter

# The first test also pays for starting the whole stack (and, once, `npm ci`).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def deployment(start_everything: EverythingStarter) -> Iterator[Deployment]:
    node_tools.install()
    with start_everything("inspector") as running:
        yield running


def inspect(deployment: Deployment, *args: str, token: str | None = None) -> dict[str, Any]:
    token = token or deployment.registration.access_token
    run = node_tools.inspector_cli(
        deployment.endpoint(), "--transport", "http", "--header", f"Authorization: Bearer {token}", *args
    )
    assert run.returncode == 0, run.stdout + run.stderr
    answer: dict[str, Any] = json.loads(run.stdout)
    return answer


def test_lists_every_tool_with_a_description(deployment: Deployment) -> None:
    tools = inspect(deployment, "--method", "tools/list")["tools"]
    names = {tool["name"] for tool in tools}
    assert {
        "test_simple_text",
        "test_tool_with_progress",
        "test_sampling",
        "json_schema_2020_12_tool",
    } <= names
    assert all(tool["description"] for tool in tools)


def test_calls_a_static_and_a_worker_tool(deployment: Deployment) -> None:
    static = inspect(deployment, "--method", "tools/call", "--tool-name", "test_simple_text")
    assert static["content"] == [{"type": "text", "text": "This is a simple text response for testing."}]
    worker = inspect(
        deployment,
        "--method",
        "tools/call",
        "--tool-name",
        "json_schema_2020_12_tool",
        "--tool-arg",
        "name=Ada",
        "email=ada@example.com",
    )
    called = 'JSON Schema 2020-12 tool called with: {"name": "Ada", "email": "ada@example.com"}'
    assert worker["content"][0]["text"] == called


def test_reads_a_templated_resource_and_gets_a_prompt(deployment: Deployment) -> None:
    read = inspect(deployment, "--method", "resources/read", "--uri", "test://template/7/data")
    assert json.loads(read["contents"][0]["text"])["id"] == "7"
    prompt = inspect(
        deployment,
        "--method",
        "prompts/get",
        "--prompt-name",
        "test_prompt_with_arguments",
        "--prompt-args",
        "arg1=x",
        "arg2=y",
    )
    assert prompt["messages"][0]["content"]["text"] == "Prompt with arguments: arg1='x', arg2='y'"


def test_a_wrong_token_fails(deployment: Deployment) -> None:
    run = node_tools.inspector_cli(
        deployment.endpoint(),
        "--transport",
        "http",
        "--header",
        "Authorization: Bearer sr_mcp_wrong",
        "--method",
        "tools/list",
    )
    assert run.returncode != 0
    assert "Unauthorized" in run.stdout + run.stderr
