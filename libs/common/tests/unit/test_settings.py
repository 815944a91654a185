from pathlib import Path

import pytest

from skillrelay_common.settings import Settings, SettingsError


def test_defaults_follow_the_contract() -> None:
    settings = Settings.from_env({})
    assert settings.http.registry_port == 8000
    assert settings.http.edge_port == 8080
    assert settings.http.auth_port == 8090
    assert settings.http.edge_public_url == "http://127.0.0.1:8080"
    assert settings.state_dir == Path(".skillrelay")
    assert settings.session_ttl_seconds == 86400
    assert settings.nats.url is None and settings.database.url is None


def test_public_urls_follow_ports_and_overrides() -> None:
    settings = Settings.from_env(
        {
            "SKILLRELAY_EDGE_PORT": "9999",
            "SKILLRELAY_AUTH_PUBLIC_URL": "https://auth.example.test/",
            "SKILLRELAY_HOST": "0.0.0.0",
        }
    )
    assert settings.http.edge_public_url == "http://127.0.0.1:9999"
    assert settings.http.auth_public_url == "https://auth.example.test"
    assert settings.http.host == "0.0.0.0"


def test_malformed_number_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="SKILLRELAY_EDGE_PORT"):
        Settings.from_env({"SKILLRELAY_EDGE_PORT": "eighty"})


def test_missing_urls_say_how_to_fix_it() -> None:
    with pytest.raises(SettingsError, match="make run"):
        Settings.from_env({}).nats.require_url()
