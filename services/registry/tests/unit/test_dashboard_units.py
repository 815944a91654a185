"""The dashboard's pure parts: the session cookie codec, form conversion and validation feedback, the
client configurations, and the cookie the middleware writes. No I/O."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec
import pytest

from skillrelay_common.audit import encode_record
from skillrelay_common.schemas.audit import AuditData, AuditRecord
from skillrelay_registry import schemas
from skillrelay_registry.dashboard import forms
from skillrelay_registry.dashboard.audit_stream import audit_rows
from skillrelay_registry.dashboard.client_config import (
    TOKEN_PLACEHOLDER,
    client_configs,
    install_links,
    server_key,
)
from skillrelay_registry.dashboard.forms import FormErrors
from skillrelay_registry.dashboard.security import (
    CONTENT_SECURITY_POLICY,
    SCOPE_KEY,
    DashboardMiddleware,
    RequestSession,
)
from skillrelay_registry.dashboard.session import (
    ANONYMOUS_SECONDS,
    COOKIE_NAME,
    REVEAL_SECONDS,
    SESSION_SECONDS,
    RevealCodec,
    SessionCodec,
)
from skillrelay_registry.errors import InvalidInput

KEY = "unit-test-secret-key-0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_session_round_trips_and_is_opaque() -> None:
    codec = SessionCodec(KEY, clock=Clock())
    session = codec.signed_in("user_abc", "Alice")
    value = codec.encode(session)
    assert codec.decode(value) == session and session.owner_name == "Alice"
    assert "user_abc" not in value and session.csrf_token not in value and "Alice" not in value


def test_a_cookie_from_before_the_name_was_carried_still_decodes() -> None:
    codec = SessionCodec(KEY, clock=Clock())
    old = msgspec.json.encode(["user_abc", "csrf", int(Clock().now) + 60]).decode()
    decoded = codec.decode(codec._box.encrypt(old))
    assert decoded is not None and decoded.owner_id == "user_abc" and decoded.owner_name == ""


def test_tampered_foreign_or_expired_sessions_are_refused() -> None:
    clock = Clock()
    codec = SessionCodec(KEY, clock=clock)
    value = codec.encode(codec.signed_in("user_abc"))
    assert codec.decode(value[:-4] + "AAAA") is None
    assert SessionCodec("another-key-0123456789abcdef0123", clock=clock).decode(value) is None
    assert (
        codec.decode("not a cookie") is None
        and codec.decode(None) is None
        and codec.decode("x" * 5000) is None
    )
    clock.now += SESSION_SECONDS + 1
    assert codec.decode(value) is None


def test_every_sign_in_gets_a_new_csrf_token() -> None:
    codec = SessionCodec(KEY, clock=Clock())
    assert codec.signed_in("u").csrf_token != codec.signed_in("u").csrf_token
    assert not codec.anonymous().signed_in


def test_cookie_is_http_only_strict_and_scoped() -> None:
    codec = SessionCodec(KEY, clock=Clock())
    session = codec.signed_in("user_abc")
    cookie = DashboardMiddleware(codec, secure_cookie=True)._set_cookie(
        RequestSession(session, cookie_out=session)
    )
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
    assert "Path=/dashboard" in cookie and f"Max-Age={SESSION_SECONDS}" in cookie
    cleared = RequestSession(session, clear_cookie=True)
    assert "Max-Age=0" in DashboardMiddleware(codec, secure_cookie=False)._set_cookie(cleared)
    assert DashboardMiddleware(codec, secure_cookie=False)._set_cookie(RequestSession(session)) == ""


def test_csp_allows_no_inline_script_or_framing() -> None:
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "'unsafe-eval'" not in CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY


def test_ability_form_becomes_the_rest_body() -> None:
    form = {
        "name": "greet",
        "title": "",
        "description": " says hi ",
        "inputSchema": '{"type": "object"}',
        "outputSchema": "",
        "handler": '{"type": "static", "content": [{"type": "text", "text": "hi {{name}}"}]}',
        "annotations": "",
    }
    body, errors = forms.read_form(forms.ABILITY_FIELDS, form)
    assert not errors
    assert body["title"] is None and body["outputSchema"] is None and body["description"] == " says hi "
    created = forms.to_body(body, schemas.AbilityCreate, errors)
    assert created.name == "greet" and created.input_schema == {"type": "object"}


def test_bad_json_and_decode_errors_name_their_field() -> None:
    body, errors = forms.read_form(forms.ABILITY_FIELDS, {"name": "x", "handler": "{nope"})
    assert "handler" in errors.fields and "not valid JSON" in errors.fields["handler"]
    with pytest.raises(FormErrors):
        forms.to_body(body, schemas.AbilityCreate, errors)
    body, errors = forms.read_form(forms.ABILITY_FIELDS, {"name": "x", "handler": '{"type": "nope"}'})
    with pytest.raises(FormErrors) as raised:
        forms.to_body(body, schemas.AbilityCreate, errors)
    assert "handler" in raised.value.fields


def test_service_errors_are_attached_to_the_field_they_name() -> None:
    named = forms.registry_errors(InvalidInput("inputSchema is not a valid JSON Schema: 7 is not valid"))
    assert list(named.fields) == ["inputSchema"]
    general = forms.registry_errors(InvalidInput("something else went wrong"))
    assert general.general == ["something else went wrong"] and not general.fields


def test_scopes_are_words_and_an_empty_secret_keeps_the_old_one() -> None:
    fields = forms.oauth_connection_fields(editing=True)
    body, _ = forms.read_form(
        fields, {"name": "idp", "clientId": "c", "clientSecret": "", "scopes": "openid, email"}
    )
    assert body["scopes"] == ["openid", "email"] and "clientSecret" not in body
    update = forms.to_body(body, schemas.OAuthConnectionUpdate, FormErrors())
    assert update.scopes == ["openid", "email"]


@pytest.mark.parametrize(
    ("check", "text", "problem"),
    [
        ("inputSchema", '{"type": "object"}', None),
        ("inputSchema", '{"type": "string"}', '"type": "object"'),
        ("inputSchema", "[1", "not valid JSON"),
        ("handler", '{"type": "static", "content": [{"type": "text", "text": "x"}]}', None),
        ("handler", '{"type": "http", "method": "GET", "url": "ftp://x"}', "http:// or https://"),
        ("dynamicHandler", '{"type": "static", "content": []}', "expected one of http, worker"),
        ("messages", '[{"role": "user", "content": {"type": "text", "text": "hi"}}]', None),
        ("arguments", '[{"nom": "x"}]', "arguments"),
        ("outputSchema", "", None),
    ],
)
def test_live_checks_use_the_rest_rules(check: str, text: str, problem: str | None) -> None:
    found = forms.check_json_field(check, text, "handler" if check == "dynamicHandler" else check)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_client_configs_carry_the_token_in_the_header_or_in_the_query_with_oauth() -> None:
    endpoint = "https://edge.example/api/v1/integration/mcpserver/mcpserver_x/mcp"
    configs = {c.id: c.text for c in client_configs("My Server!", endpoint, "sr_mcp_tok", oauth=False)}
    assert set(configs) == {
        "config-claude-desktop",
        "config-claude-code",
        "config-cursor",
        "config-vscode",
        "config-windsurf",
        "config-python",
        "config-typescript",
    }
    bearer = {"Authorization": "Bearer sr_mcp_tok"}
    assert json.loads(configs["config-cursor"])["mcpServers"]["my-server"] == {
        "url": endpoint,
        "headers": bearer,
    }
    assert json.loads(configs["config-vscode"])["servers"]["my-server"] == {
        "type": "http",
        "url": endpoint,
        "headers": bearer,
    }
    assert json.loads(configs["config-windsurf"])["mcpServers"]["my-server"]["serverUrl"] == endpoint
    desktop = json.loads(configs["config-claude-desktop"])["mcpServers"]["my-server"]
    assert desktop["args"] == ["-y", "mcp-remote", endpoint, "--header", "Authorization:${AUTH_HEADER}"]
    assert desktop["env"] == {"AUTH_HEADER": "Bearer sr_mcp_tok"}
    assert "--header 'Authorization: Bearer sr_mcp_tok'" in configs["config-claude-code"]
    assert 'Authorization: "Bearer sr_mcp_tok"' in configs["config-typescript"]
    compile(configs["config-python"], "config.py", "exec")  # valid Python

    with_oauth = {c.id: c.text for c in client_configs("s", endpoint, "a/b+c", oauth=True)}
    entry = json.loads(with_oauth["config-cursor"])["mcpServers"]["s"]
    assert entry == {"url": f"{endpoint}?authorization=a%2Fb%2Bc"}
    assert "Authorization" not in with_oauth["config-typescript"]
    assert server_key("!!!") == "skillrelay"


def test_configs_without_the_token_hold_a_placeholder() -> None:
    endpoint = "https://edge.example/mcp"
    for config in client_configs("s", endpoint, None, oauth=False):
        assert TOKEN_PLACEHOLDER in config.text, config.id
    oauth = {c.id: c.text for c in client_configs("s", endpoint, None, oauth=True)}
    assert f"?authorization={TOKEN_PLACEHOLDER}" in oauth["config-claude-code"]


def test_install_links_follow_the_clients_deeplink_formats_and_never_carry_a_token() -> None:
    endpoint = "https://edge.example/api/v1/integration/mcpserver/mcpserver_x/mcp"
    links = {link.id: link.url for link in install_links("My Server", endpoint, oauth=False)}
    cursor = urlsplit(links["install-cursor"])
    assert (cursor.scheme, cursor.netloc, cursor.path) == (
        "cursor",
        "anysphere.cursor-deeplink",
        "/mcp/install",
    )
    query = parse_qs(cursor.query)
    assert query["name"] == ["my-server"]
    assert json.loads(base64.b64decode(query["config"][0])) == {
        "url": endpoint,
        "headers": {"Authorization": "Bearer ${env:SKILLRELAY_MY_SERVER_TOKEN}"},
    }
    assert links["install-vscode"].startswith("vscode:mcp/install?")
    vscode = json.loads(unquote(links["install-vscode"].partition("?")[2]))
    assert vscode["name"] == "my-server" and vscode["type"] == "http" and vscode["url"] == endpoint
    assert vscode["headers"] == {"Authorization": "Bearer ${input:my-server-token}"}
    assert vscode["inputs"][0]["id"] == "my-server-token" and vscode["inputs"][0]["password"] is True
    assert install_links("s", endpoint, oauth=True) == []


async def _run_middleware(
    middleware: DashboardMiddleware, method: str, cookie: str
) -> tuple[RequestSession, list[str]]:
    seen: dict[str, RequestSession] = {}
    sent: list[dict[str, object]] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        holder = scope[SCOPE_KEY]
        assert isinstance(holder, RequestSession)
        seen["holder"] = holder
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": "/dashboard/signin",
        "headers": [(b"cookie", cookie.encode())],
    }
    await middleware.handle(scope, None, send, app)  # type: ignore[arg-type]
    headers = [(k.decode(), v.decode()) for k, v in sent[0]["headers"]]  # type: ignore[attr-defined]
    return seen["holder"], [v for k, v in headers if k == "set-cookie"]


async def test_an_ageing_anonymous_session_is_renewed_on_page_loads_only() -> None:
    clock = Clock()
    codec = SessionCodec(KEY, clock=clock)
    middleware = DashboardMiddleware(codec, secure_cookie=False)
    anonymous = codec.anonymous()
    cookie = f"{COOKIE_NAME}={codec.encode(anonymous)}"
    clock.now += ANONYMOUS_SECONDS * 0.75
    posted, posted_cookies = await _run_middleware(middleware, "POST", cookie)
    assert posted.session == anonymous and posted_cookies == []  # the form's token still counts
    loaded, loaded_cookies = await _run_middleware(middleware, "GET", cookie)
    assert loaded.session != anonymous and len(loaded_cookies) == 1


def test_audit_rows_carry_the_record_fields_and_skip_unreadable_ones() -> None:
    record = AuditRecord(
        id="a1",
        source="edge",
        type="dev.skillrelay.audit.v1.tool.call",
        time="2026-11-21T17:00:00.000Z",
        subject="mcpserver_x",
        data=AuditData(
            kind="tool.call", outcome="ok", principal="static:v1", latency_ms=1.5, details={"tool": "greet"}
        ),
    )
    [row] = map(json.loads, audit_rows(encode_record(record)))
    assert row == {
        "time": "2026-11-21T17:00:00.000Z",
        "kind": "tool.call",
        "outcome": "ok",
        "principal": "static:v1",
        "latencyMs": 1.5,
        "details": {"tool": "greet"},
    }
    assert audit_rows(b"not json") == []
    # A parcel (one stored message holding several records) shows every record.
    parcel = msgspec.json.encode([record, msgspec.structs.replace(record, id="a2")])
    assert len(audit_rows(parcel)) == 2


def test_a_revealed_token_is_only_for_its_owner_integration_and_two_minutes() -> None:
    clock = Clock()
    codec = RevealCodec(KEY, clock=clock)
    value = codec.encode("user_a", "mcpserver_x", "sr_mcp_tok", rotated=True)
    assert "sr_mcp_tok" not in value
    reveal = codec.decode(value, "user_a", "mcpserver_x")
    assert reveal is not None and reveal.token == "sr_mcp_tok" and reveal.rotated
    assert codec.decode(value, "user_b", "mcpserver_x") is None
    assert codec.decode(value, "user_a", "mcpserver_y") is None
    assert SessionCodec(KEY, clock=clock).decode(value) is None  # another purpose, another key
    clock.now += REVEAL_SECONDS + 1
    assert codec.decode(value, "user_a", "mcpserver_x") is None
