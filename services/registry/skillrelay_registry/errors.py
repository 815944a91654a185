"""Errors of the registry's use cases, free of any framework: the HTTP layer maps each to its status
and ``{"code", "message"}`` body, the dashboard to a form message."""

from __future__ import annotations


class RegistryError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(RegistryError):
    status = 400
    code = "bad_request"


class Unauthorized(RegistryError):
    status = 401
    code = "unauthorized"


class NotFoundError(RegistryError):
    """Missing, or owned by someone else: the two are indistinguishable on purpose."""

    status = 404
    code = "not_found"

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")


class ConflictError(RegistryError):
    status = 409
    code = "conflict"


class TooLarge(RegistryError):
    status = 413
    code = "payload_too_large"


class ServiceUnavailable(RegistryError):
    """A service the registry depends on (auth, sessions) did not answer; nothing was changed."""

    status = 503
    code = "unavailable"


def describe_problem(item: object, *, dynamic_handlers_only: bool = False) -> str:
    """One decoding problem as Litestar reports it (``{"message", "key", "source"}``), for humans.
    Resources and prompts take only the dynamic handler kinds (http, worker)."""
    if not isinstance(item, dict):
        return str(item)
    message = str(item.get("message", ""))
    key = str(item.get("key") or "")
    if key.endswith("handler.type") and message.startswith("Invalid value"):
        value = message.removeprefix("Invalid value").strip()
        if dynamic_handlers_only:
            message = f"handler type {value} is not allowed here (expected one of http, worker)"
        else:
            message = f"unknown handler type {value} (expected one of static, http, worker)"
    return f"{key}: {message}" if key else message
