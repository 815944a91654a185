"""``POST /api/v1/user/create``: the operator (admin token) creates an owner and its API key."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import Provide
from litestar.params import JSONBody

from skillrelay_registry import schemas
from skillrelay_registry.api.common import Service, bearer_token, provide_service
from skillrelay_registry.errors import Unauthorized


class UserController(Controller):
    path = "/user"
    tags = ["users"]
    dependencies = {"service": Provide(provide_service, sync_to_thread=False)}
    security = [{"adminToken": []}]

    @post("/create", status_code=200, summary="Create a user and its API key (admin token only)")
    async def create_user(
        self, request: Request[Any, Any, Any], service: Service, data: JSONBody[schemas.UserCreate]
    ) -> schemas.UserCreated:
        if not service.is_admin_token(bearer_token(request)):
            raise Unauthorized("this call needs Authorization: Bearer <admin token>")
        return await service.create_user(data)
