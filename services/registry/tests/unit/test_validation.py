"""The content rules of skillsets, without any I/O."""

import pytest

from skillrelay_common.schemas.abilities import HttpHandler, StaticHandler, WorkerHandler
from skillrelay_registry import validation
from skillrelay_registry.errors import InvalidInput
from skillrelay_registry.schemas import PromptArgumentIn, PromptMessageIn


@pytest.mark.parametrize("name", ["echo", "get_weather", "a.b-c_D9", "x" * 128, "A"])
def test_tool_names_the_mcp_spec_allows(name: str) -> None:
    assert validation.tool_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 129, "has space", "slash/no", "ünïcode", "semi;colon", "a,b"])
def test_tool_names_the_mcp_spec_forbids(name: str) -> None:
    with pytest.raises(InvalidInput, match="not a valid MCP tool name"):
        validation.tool_name(name)


def test_input_schema_must_be_an_object_schema() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    assert validation.json_schema_object(schema, "inputSchema") == schema
    with pytest.raises(InvalidInput, match='"type": "object"'):
        validation.json_schema_object({"type": "string"}, "inputSchema")
    with pytest.raises(InvalidInput, match="not a valid JSON Schema"):
        validation.json_schema_object({"type": "object", "properties": {"a": {"type": 5}}}, "inputSchema")
    with pytest.raises(InvalidInput, match="at properties/a/minimum"):
        validation.json_schema_object(
            {"type": "object", "properties": {"a": {"minimum": "zero"}}}, "outputSchema"
        )


def test_declared_dialects_are_checked_against_their_own_meta_schema() -> None:
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}
    assert validation.json_schema_object(draft7, "inputSchema") == draft7
    with pytest.raises(InvalidInput, match="unsupported \\$schema"):
        validation.json_schema_object(
            {"$schema": "https://example.com/mine", "type": "object"}, "inputSchema"
        )


@pytest.mark.parametrize(
    "uri", ["file:///etc/hosts", "https://example.com/a?b=c#d", "urn:isbn:0451450523", "app://x/%20y"]
)
def test_valid_uris(uri: str) -> None:
    assert validation.uri(uri) == uri


@pytest.mark.parametrize("uri", ["", "no-scheme", "http://exa mple.com", "1http://x", "x:%zz", "a:<b>"])
def test_invalid_uris(uri: str) -> None:
    with pytest.raises(InvalidInput, match="not a valid absolute URI"):
        validation.uri(uri)


@pytest.mark.parametrize(
    "template",
    [
        "file:///{path}",
        "https://api.example.com/users/{id}/posts{?limit,offset}",
        "db://{+base}/{table:10}{/segments*}{#frag}",
        "x:{a.b}{;params*}{&more}",
    ],
)
def test_valid_uri_templates(template: str) -> None:
    assert validation.uri_template(template) == template


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("file:///{path", "unclosed"),
        ("file:///path}", "unmatched"),
        ("file:///{}", "empty expression"),
        ("file:///{=x}", "reserved"),
        ("file:///{a b}", "not a valid variable"),
        ("file:///{a:0}", "prefix modifier"),
        ("file:///{a:12345}", "prefix modifier"),
        ("file:///static", "has no"),
        ("file:///<x>/{a}", "may not contain"),
    ],
)
def test_invalid_uri_templates(template: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        validation.uri_template(template)


def test_handlers_beyond_their_types() -> None:
    validation.handler(StaticHandler(content=[{"type": "text", "text": "hi {{name}}"}]))
    validation.handler(HttpHandler(url="https://api.example.com/x"))
    validation.handler(WorkerHandler(subject="weather.lookup"))
    with pytest.raises(InvalidInput, match="http:// or https://"):
        validation.handler(HttpHandler(url="ftp://example.com/x"))
    with pytest.raises(InvalidInput, match="line break"):
        validation.handler(HttpHandler(url="https://x.example", headers={"X-A": "a\r\nInjected: 1"}))
    with pytest.raises(InvalidInput, match="subject"):
        validation.handler(WorkerHandler(subject="weather.>"))
    with pytest.raises(InvalidInput, match="timeoutMs"):
        validation.handler(WorkerHandler(subject="w", timeout_ms=0))
    with pytest.raises(InvalidInput, match="content type"):
        validation.handler(StaticHandler(content=[{"type": "video"}]))
    with pytest.raises(InvalidInput, match="base64"):
        validation.handler(StaticHandler(content=[{"type": "image", "data": "***", "mimeType": "image/png"}]))


def test_only_a_tool_may_run_as_a_task() -> None:
    tasked = WorkerHandler(subject="jobs.run", task_support="optional")
    validation.handler(tasked, tools=True)
    validation.handler(WorkerHandler(subject="jobs.run", task_support="required"), tools=True)
    with pytest.raises(InvalidInput, match="taskSupport"):
        validation.handler(tasked)  # a resource's or prompt's handler


def test_resource_shapes() -> None:
    validation.resource_shape(uri_value="file:///a", template=None, text="x", blob=None, has_handler=False)
    validation.resource_shape(uri_value="file:///a", template=None, text=None, blob="aGk=", has_handler=False)
    validation.resource_shape(uri_value=None, template="file:///{p}", text=None, blob=None, has_handler=True)
    with pytest.raises(InvalidInput, match="exactly one of uri or uriTemplate"):
        validation.resource_shape(uri_value=None, template=None, text="x", blob=None, has_handler=False)
    with pytest.raises(InvalidInput, match="exactly one of text, blob or handler"):
        validation.resource_shape(
            uri_value="file:///a", template=None, text="x", blob="aGk=", has_handler=False
        )
    with pytest.raises(InvalidInput, match="base64"):
        validation.resource_shape(
            uri_value="file:///a", template=None, text=None, blob="!!", has_handler=False
        )
    with pytest.raises(InvalidInput, match="needs a handler"):
        validation.resource_shape(
            uri_value=None, template="file:///{p}", text=None, blob=None, has_handler=False
        )


def test_oauth_endpoint_choices() -> None:
    validation.oauth_endpoints(
        issuer="https://idp.example", authorization_url=None, token_url=None, userinfo_url=None
    )
    validation.oauth_endpoints(
        issuer=None, authorization_url="https://idp/a", token_url="https://idp/t", userinfo_url=None
    )
    with pytest.raises(InvalidInput, match="not both"):
        validation.oauth_endpoints(
            issuer="https://idp.example", authorization_url="https://idp/a", token_url=None, userinfo_url=None
        )
    with pytest.raises(InvalidInput, match="either issuer"):
        validation.oauth_endpoints(
            issuer=None, authorization_url="https://idp/a", token_url=None, userinfo_url=None
        )


def test_json_depth_counts_nesting_outside_strings() -> None:
    from skillrelay_common.json_limits import MAX_JSON_DEPTH, json_depth

    assert json_depth(b'{"a": [1, {"b": 2}]}') == 0  # too few brackets to bother scanning
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    assert json_depth(deep) == MAX_JSON_DEPTH + 1
    in_strings = b'{"x": "' + b"[" * 500 + b'", "y": ["\\"["]}'
    assert json_depth(in_strings) == 2


def _prompt_with(content: dict[str, object], arguments: tuple[str, ...] = ("resourceUri",)) -> None:
    validation.prompt_shape(
        [PromptArgumentIn(name=name) for name in arguments],
        [PromptMessageIn(role="user", content=content)],
        has_handler=False,
    )


def test_a_prompt_uri_may_be_a_placeholder_that_prompts_get_fills() -> None:
    _prompt_with({"type": "resource", "resource": {"uri": "{{resourceUri}}", "text": "x"}})
    _prompt_with({"type": "resource_link", "uri": "file:///docs/{{resourceUri}}", "name": "doc"})
    with pytest.raises(InvalidInput, match="uses \\{\\{other\\}\\}, which is not an argument"):
        _prompt_with({"type": "resource", "resource": {"uri": "{{other}}", "text": "x"}})
    with pytest.raises(InvalidInput, match="characters a URI may not contain"):
        _prompt_with({"type": "resource_link", "uri": "file:///a b/{{resourceUri}}", "name": "doc"})
    with pytest.raises(InvalidInput, match="not a valid absolute URI"):
        _prompt_with({"type": "resource", "resource": {"uri": "readme.md", "text": "x"}})
