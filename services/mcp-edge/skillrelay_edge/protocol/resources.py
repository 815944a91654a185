"""resources/list, resources/templates/list, resources/read, resources/subscribe, resources/unsubscribe."""

from __future__ import annotations

from typing import Any

from skillrelay_common.schemas.abilities import ResourceDef
from skillrelay_edge.calls.context import INVALID_PARAMS, RESOURCE_NOT_FOUND, AbilityError
from skillrelay_edge.protocol.calls import make_context, run_handler
from skillrelay_edge.protocol.pagination import page
from skillrelay_edge.protocol.scope import RequestScope, Services
from skillrelay_edge.transport.jsonrpc import RpcError

SUBSCRIPTIONS_KEY = "subscriptions"
# Subscriptions live in the session's state (64 KB in all, shared with the client's capabilities).
MAX_SUBSCRIPTIONS = 100
MAX_SUBSCRIPTION_URI = 2048


async def list_resources(scope: RequestScope, services: Services, params: dict[str, Any]) -> dict[str, Any]:
    catalog = scope.catalog
    return page(catalog.resource_entries, params, "resources", catalog.snapshot.skillset.revision)


async def list_templates(scope: RequestScope, services: Services, params: dict[str, Any]) -> dict[str, Any]:
    catalog = scope.catalog
    return page(catalog.template_entries, params, "resourceTemplates", catalog.snapshot.skillset.revision)


def _uri(params: dict[str, Any]) -> str:
    uri = params.get("uri")
    if not isinstance(uri, str) or not uri:
        raise RpcError(INVALID_PARAMS, "Invalid params: uri is required")
    return uri


def _static_contents(resource: ResourceDef, uri: str) -> dict[str, Any]:
    item: dict[str, Any] = {"uri": uri}
    if resource.mime_type:
        item["mimeType"] = resource.mime_type
    if resource.blob is not None:
        item["blob"] = resource.blob
    else:
        item["text"] = resource.text or ""
    return {"contents": [item]}


async def read_resource(scope: RequestScope, services: Services, params: dict[str, Any]) -> dict[str, Any]:
    uri = _uri(params)
    catalog = scope.catalog
    resource = catalog.resources.get(uri)
    variables: dict[str, str] = {}
    if resource is None:
        found = catalog.find_template(uri)
        if found is None:
            raise RpcError(RESOURCE_NOT_FOUND, "Resource not found", {"uri": uri})
        resource, variables = found
    if resource.handler is None:
        if resource.uri_template:
            raise RpcError(
                RESOURCE_NOT_FOUND, "Resource not found: the template has no handler", {"uri": uri}
            )
        return _static_contents(resource, uri)
    ctx = make_context(scope, "resources/read", uri, resource, params)
    try:
        return await run_handler(services, ctx, resource.handler, {**variables, "uri": uri})
    except AbilityError as exc:
        raise RpcError(exc.code, exc.message) from None


async def _set_subscription(scope: RequestScope, services: Services, uri: str, subscribed: bool) -> None:
    if scope.session is None:
        return
    if subscribed:
        if len(uri) > MAX_SUBSCRIPTION_URI:
            raise RpcError(
                INVALID_PARAMS, f"Invalid params: uri is longer than {MAX_SUBSCRIPTION_URI} characters"
            )
        held = scope.session.state.get(SUBSCRIPTIONS_KEY)
        if isinstance(held, list) and uri not in held and len(held) >= MAX_SUBSCRIPTIONS:
            raise RpcError(
                INVALID_PARAMS, f"Invalid params: a session holds at most {MAX_SUBSCRIPTIONS} subscriptions"
            )
    # An atomic list edit in the sessions service: a read-modify-write here would lose one of two
    # subscriptions made at once (e.g. on two replicas).
    change = {SUBSCRIPTIONS_KEY: [uri]}
    try:
        updated = await services.sessions.update_state(
            scope.session.session_id,
            {},
            add_items=change if subscribed else None,
            remove_items=None if subscribed else change,
        )
    except ValueError:  # the sessions service refused: the state would outgrow its limit
        raise RpcError(
            INVALID_PARAMS, "Invalid params: the session's subscriptions would outgrow its state"
        ) from None
    if updated is not None:
        scope.session = updated
        uris = updated.state.get(SUBSCRIPTIONS_KEY)
        if services.on_subscriptions is not None and isinstance(uris, list):
            await services.on_subscriptions(updated.session_id, [str(uri) for uri in uris])


async def subscribe(scope: RequestScope, services: Services, params: dict[str, Any]) -> dict[str, Any]:
    await _set_subscription(scope, services, _uri(params), True)
    return {}


async def unsubscribe(scope: RequestScope, services: Services, params: dict[str, Any]) -> dict[str, Any]:
    await _set_subscription(scope, services, _uri(params), False)
    return {}
