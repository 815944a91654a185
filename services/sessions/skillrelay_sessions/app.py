"""Composition root of the sessions service (NATS only, no HTTP)."""

from __future__ import annotations

from pathlib import Path

from skillrelay_common.lifecycle import ServiceResources
from skillrelay_common.logging import configure_logging
from skillrelay_common.runtime import run_until_signalled
from skillrelay_common.settings import Settings
from skillrelay_common.subjects import SESSIONS_EVENTS
from skillrelay_sessions.handlers import SERVED_ENDPOINTS, register_handlers

SERVICE = "sessions"


def build_resources(settings: Settings) -> ServiceResources:
    return ServiceResources(
        SERVICE,
        settings,
        schema="sessions",
        migrations_dir=Path(__file__).parent / "migrations",
        streams=(SESSIONS_EVENTS,),
        serves=SERVED_ENDPOINTS,
    )


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json, service=SERVICE)
    resources = build_resources(settings)
    run_until_signalled(lambda: resources.start(register_handlers), resources.stop)
