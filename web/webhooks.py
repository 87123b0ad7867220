"""Outbound webhook endpoints per subscriber (service bearer token, as the feed API).

    GET    /users/{user_id}/webhooks                         the user's endpoints (no secrets)
    POST   /users/{user_id}/webhooks   {"url", "event_types"} -> {"endpoint", "secret"} (the secret shown once)
    POST   /webhooks/{endpoint_id}/rotate                    -> {"secret"}: signs next to the old one(s)
    POST   /webhooks/{endpoint_id}/enable
"""

from __future__ import annotations

from faust.web import Request, Response, View

from crownstream.app import app
from crownstream.settings import get_settings
from crownstream.sinks import db
from crownstream.sinks.targets import TargetRefused
from crownstream.sinks.webhook_endpoints import create_endpoint, endpoints_of, rotate_secret, set_enabled
from crownstream.web.auth import Unauthorized, require_staff


def _error(view: View, status: int, message: str) -> Response:
    return view.json({"error": message}, status=status)


def _auth(view: View, request: Request) -> Response | None:
    try:
        require_staff(request.headers.get("Authorization"))
    except Unauthorized as exc:
        return _error(view, 401, str(exc))
    return None


@app.page("/users/{user_id}/webhooks")
class UserWebhooks(View):
    async def get(self, request: Request, user_id: str) -> Response:
        if (denied := _auth(self, request)) is not None:
            return denied
        endpoints = await endpoints_of(db.engine(), [user_id], enabled_only=False)
        return self.json({"user_id": user_id, "endpoints": [e.public() for e in endpoints]})

    async def post(self, request: Request, user_id: str) -> Response:
        if (denied := _auth(self, request)) is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            return _error(self, 400, 'body must be {"url": "https://…", "event_types": [optional list]}')
        types = body.get("event_types") or []
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            return _error(self, 400, "event_types must be a list of notification types")
        try:
            endpoint, secret = await create_endpoint(db.engine(), user_id, body["url"], types,
                                                     allow_private=get_settings().sink_allow_private_targets)
        except TargetRefused as exc:
            return _error(self, 400, str(exc))
        return self.json({"endpoint": endpoint.public(), "secret": secret}, status=201)


@app.page("/webhooks/{endpoint_id}/rotate")
class RotateSecret(View):
    async def post(self, request: Request, endpoint_id: str) -> Response:
        if (denied := _auth(self, request)) is not None:
            return denied
        try:
            return self.json({"endpoint_id": endpoint_id, "secret": await rotate_secret(db.engine(), endpoint_id)})
        except KeyError:
            return _error(self, 404, f"no webhook endpoint {endpoint_id}")


@app.page("/webhooks/{endpoint_id}/enable")
class EnableEndpoint(View):
    async def post(self, request: Request, endpoint_id: str) -> Response:
        if (denied := _auth(self, request)) is not None:
            return denied
        if not await set_enabled(db.engine(), endpoint_id, True):
            return _error(self, 404, f"no webhook endpoint {endpoint_id}")
        return self.json({"endpoint_id": endpoint_id, "enabled": True})
