"""Checks the authorization server takes from Authlib, beside its own policy."""

from __future__ import annotations

import pytest
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oauth2.rfc9207 import AuthorizationServerMetadata as IssuerParameterMetadata

from skillrelay_auth.oauth.framework import Answer, FormRequest
from skillrelay_auth.oauth.metadata import server_metadata
from skillrelay_auth.oauth.policy import valid_redirect_uri
from skillrelay_auth.oauth.registration import client_metadata


def test_metadata_passes_authlibs_rfc8414_and_rfc9207_validation() -> None:
    document = AuthorizationServerMetadata(server_metadata("https://auth.example.test/oauth/mcpserver_1"))
    document.validate(metadata_classes=[IssuerParameterMetadata])  # raises ValueError when wrong
    assert document["code_challenge_methods_supported"] == ["S256"]


def test_metadata_of_an_issuer_on_plain_http_off_loopback_is_refused_by_authlib() -> None:
    document = AuthorizationServerMetadata(server_metadata("http://auth.example.test/oauth/mcpserver_1"))
    with pytest.raises(ValueError, match="https"):
        document.validate()


def test_oauth_requests_need_https_except_on_loopback() -> None:
    """Authlib refuses an OAuth request that did not come over TLS (RFC 6749 section 3.1)."""
    with pytest.raises(InsecureTransportError):
        FormRequest("POST", "http://auth.example.test/oauth/mcpserver_1/token", {}, {})
    assert FormRequest("POST", "http://127.0.0.1:8090/oauth/mcpserver_1/token", {}, {}).form == {}
    assert FormRequest("POST", "https://auth.example.test/oauth/mcpserver_1/token", {}, {"a": "b"}).form


def test_redirect_uris_with_userinfo_that_disguises_the_host_are_refused() -> None:
    assert not valid_redirect_uri("https://app.example@evil.example/cb")
    assert not valid_redirect_uri("http://127.0.0.1@evil.example/cb")
    assert valid_redirect_uri("https://app.example/cb")


def test_registration_policy_fills_defaults_and_drops_unusable_display_fields() -> None:
    metadata = client_metadata(
        {
            "redirect_uris": ["https://app.example/cb"],
            "client_uri": {"x": 1},
            "logo_uri": "https://l.example/l",
        }
    )
    assert metadata == {
        "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "logo_uri": "https://l.example/l",
    }


def test_answer_location_is_editable_for_the_issuer_parameter() -> None:
    answer = Answer(302, "", [("Location", "https://app.example/cb?code=x")])
    answer.location = answer.location + "&iss=y"  # type: ignore[operator]
    assert answer.headers == [("Location", "https://app.example/cb?code=x&iss=y")]
