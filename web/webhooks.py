"""Outbound webhook endpoints per subscriber (the user's own token, or the staff token; web/auth.py).

    GET    /users/{user_id}/webhooks                         the user's endpoints (no secrets; v1a public keys)
    POST   /users/{user_id}/webhooks   {"url", "event_types", "signature_scheme", "rate_limit_per_second"}
                                       -> {"endpoint", "secret"} (v1: the secret, shown once) or
                                          {"endpoint", "public_key"} (v1a: the private key never leaves us)
    POST   /webhooks/{endpoint_id}/rotate  [{"signature_scheme"}] -> {"secret" | "public_key",
                                                             "previous_secrets_sign_until"}: the new key signs, the old
                                                             ones beside it for the grace window
    PUT    /webhooks/{endpoint_id}/rate-limit  {"per_second"}  at most that many deliveries a second; the rest wait
    DELETE /webhooks/{endpoint_id}/rate-limit                  no limit
    POST   /webhooks/{endpoint_id}/enable
    GET    /webhooks/{endpoint_id}/deliveries?limit=50&state=  recent deliveries, each with every attempt
    POST   /webhooks/{endpoint_id}/deliveries/{delivery_id}/resend
    POST   /webhooks/{endpoint_id}/recover  {"since": ISO 8601}  every failed or dead one since then, again
    POST   /webhooks/{endpoint_id}/pause | /resume             deliveries held in the ledger meanwhile

The last two name an endpoint, not a user: its owner is looked up first, so a user token only works on the
user's own endpoints.
"""

from __future__ import annotations

from datetime import datetime

from faust.web import Request, Response, View

from crownstream.app import app
from crownstream.notifications.catalog import CATALOG
from crownstream.settings import get_settings
from crownstream.sinks import db
from crownstream.sinks.endpoint_deliveries import recent, recover, resend
from crownstream.sinks.rate_limit import MIN_RATE
from crownstream.sinks.signing import PUBLIC_KEY_PREFIX, SCHEMES
from crownstream.sinks.targets import TargetRefused
from crownstream.sinks.webhook_endpoints import (
    create_endpoint,
    endpoints_of,
    get_endpoints,
    rotate_secret,
    set_enabled,
    set_paused,
    set_rate_limit,
)
from crownstream.web.auth import USER, access
from crownstream.web.errors import HttpError
from crownstream.web.inputs import bad_character, query_int, read_object

_CREATE_BODY = (
    '{"url": "https://…", "event_types": [optional list of notification types], "signature_scheme": optional "v1" '
    '(HMAC, the default) or "v1a" (Ed25519), "rate_limit_per_second": optional number}'
)
_ROTATE_BODY = '{"signature_scheme": optional "v1" or "v1a" (default: the endpoint\'s current one)} or no body'
_RATE_LIMIT_BODY = '{"per_second": a number of messages a second, more than 0}'


def signature_scheme(body: dict, default: str | None) -> str | None:
    """The body's signature scheme; ``default`` if it names none (None: the endpoint's current one)."""
    scheme = body.get("signature_scheme", default)
    if scheme is None and default is None:
        return None
    if scheme not in SCHEMES:
        raise HttpError(
            400,
            f"signature_scheme must be one of {list(SCHEMES)} (v1: HMAC-SHA256 with a shared secret; v1a: Ed25519, "
            f"you get the public key), not {str(scheme)[:32]!r}",
        )
    return scheme


def rate_limit(value: object, name: str) -> float:
    """A rate limit from a JSON body: a number from ``MIN_RATE`` to the configured maximum."""
    top = get_settings().webhook_rate_limit_max_per_second
    # bool is an int to Python, not a rate to anyone; NaN fails both comparisons (orjson refuses it anyway).
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not MIN_RATE <= value <= top:
        raise HttpError(
            400, f"{name} must be a number of messages a second, from {MIN_RATE:g} to {top:g} (got {str(value)[:32]})"
        )
    return float(value)


def key_answer(key: str) -> dict[str, str]:
    """What the owner is given for a new signing key: the v1 secret, or the v1a public key."""
    return {"public_key": key} if key.startswith(PUBLIC_KEY_PREFIX) else {"secret": key}


async def endpoint_owner(request: Request, params: dict[str, str]) -> str:
    """The user who owns the endpoint named in the path; 404 if there is none."""
    endpoint_id = params["endpoint_id"]
    endpoint = (await get_endpoints(db.engine(), [endpoint_id])).get(endpoint_id)
    if endpoint is None:
        raise HttpError(404, f"no webhook endpoint {endpoint_id!r}")
    return endpoint.user_id


@app.page("/users/{user_id}/webhooks")
class UserWebhooks(View):
    @access(USER, owner="user_id")
    async def get(self, request: Request, user_id: str) -> Response:
        endpoints = await endpoints_of(db.engine(), [user_id], enabled_only=False)
        return self.json({"user_id": user_id, "endpoints": [e.public() for e in endpoints]})

    @access(USER, owner="user_id")
    async def post(self, request: Request, user_id: str) -> Response:
        body = await read_object(request, _CREATE_BODY)
        if not isinstance(body.get("url"), str):
            raise HttpError(400, f"the body must be {_CREATE_BODY}")
        if len(body["url"]) > get_settings().sink_max_url_length or bad_character(body["url"]) is not None:
            raise HttpError(400, f"url must be at most {get_settings().sink_max_url_length} printable characters")
        types = body.get("event_types") or []
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise HttpError(400, "event_types must be a list of notification types")
        unknown = sorted({t for t in types if t not in CATALOG})
        if unknown:
            raise HttpError(
                400, f"unknown notification types {[t[:64] for t in unknown[:5]]}; known: {sorted(CATALOG)}"
            )
        scheme = signature_scheme(body, "v1")
        limit = body.get("rate_limit_per_second")
        per_second = None if limit is None else rate_limit(limit, "rate_limit_per_second")
        try:
            endpoint, key = await create_endpoint(
                db.engine(),
                user_id,
                body["url"],
                types,
                allow_private=get_settings().sink_allow_private_targets,
                signature_scheme=scheme or "v1",
                rate_limit_per_second=per_second,
            )
        except TargetRefused as exc:
            raise HttpError(400, str(exc)) from None
        return self.json({"endpoint": endpoint.public(), **key_answer(key)}, status=201)


@app.page("/webhooks/{endpoint_id}/rotate")
class RotateSecret(View):
    @access(USER, owner=endpoint_owner)
    async def post(self, request: Request, endpoint_id: str) -> Response:
        body = await read_object(request, _ROTATE_BODY) if request.body_exists else {}
        scheme = signature_scheme(body, None)
        try:
            key, previous_until = await rotate_secret(
                db.engine(), endpoint_id, grace_s=get_settings().webhook_secret_grace_s, signature_scheme=scheme
            )
        except KeyError:
            raise HttpError(404, f"no webhook endpoint {endpoint_id!r}") from None
        return self.json(
            {
                "endpoint_id": endpoint_id,
                **key_answer(key),
                "previous_secrets_sign_until": previous_until.isoformat() if previous_until else None,
            }
        )


@app.page("/webhooks/{endpoint_id}/rate-limit")
class EndpointRateLimit(View):
    """The owner's rate limit: deliveries over it wait in the ledger (none fails or spends an attempt). It holds for
    the whole cluster: one worker at a time delivers to a limited endpoint (sinks/pacing_owner.py)."""

    @access(USER, owner=endpoint_owner)
    async def put(self, request: Request, endpoint_id: str) -> Response:
        body = await read_object(request, _RATE_LIMIT_BODY)
        per_second = rate_limit(body.get("per_second"), "per_second")
        if not await set_rate_limit(db.engine(), endpoint_id, per_second):
            raise HttpError(404, f"no webhook endpoint {endpoint_id!r}")
        return self.json({"endpoint_id": endpoint_id, "rate_limit_per_second": per_second})

    @access(USER, owner=endpoint_owner)
    async def delete(self, request: Request, endpoint_id: str) -> Response:
        if not await set_rate_limit(db.engine(), endpoint_id, None):
            raise HttpError(404, f"no webhook endpoint {endpoint_id!r}")
        return self.json({"endpoint_id": endpoint_id, "rate_limit_per_second": None})


@app.page("/webhooks/{endpoint_id}/enable")
class EnableEndpoint(View):
    @access(USER, owner=endpoint_owner)
    async def post(self, request: Request, endpoint_id: str) -> Response:
        if not await set_enabled(db.engine(), endpoint_id, True):
            raise HttpError(404, f"no webhook endpoint {endpoint_id!r}")
        return self.json({"endpoint_id": endpoint_id, "enabled": True})


DELIVERY_STATES = {"pending": "pending", "retrying": "failed", "sent": "sent", "dead": "dead", "sending": "sending"}
MAX_DELIVERIES_PAGE = 200
_RECOVER_BODY = '{"since": "an ISO 8601 date-time with its offset, e.g. 2026-12-07T10:00:00Z"}'


@app.page("/webhooks/{endpoint_id}/deliveries")
class EndpointDeliveries(View):
    @access(USER, owner=endpoint_owner)
    async def get(self, request: Request, endpoint_id: str) -> Response:
        limit = query_int(request, "limit", 50, 1, MAX_DELIVERIES_PAGE)
        state = request.query.get("state")
        if state is not None and state not in DELIVERY_STATES:
            raise HttpError(400, f"state must be one of {sorted(DELIVERY_STATES)}, not {state[:32]!r}")
        rows = await recent(db.engine(), endpoint_id, limit, DELIVERY_STATES[state] if state else None)
        return self.json({"endpoint_id": endpoint_id, "deliveries": rows})


@app.page("/webhooks/{endpoint_id}/deliveries/{delivery_id}/resend")
class ResendDelivery(View):
    @access(USER, owner=endpoint_owner)
    async def post(self, request: Request, endpoint_id: str, delivery_id: str) -> Response:
        if not await resend(db.engine(), endpoint_id, delivery_id):
            raise HttpError(404, f"no delivery {delivery_id[:64]!r} to endpoint {endpoint_id!r} that can be resent now")
        return self.json({"endpoint_id": endpoint_id, "id": delivery_id, "state": "pending"}, status=202)


@app.page("/webhooks/{endpoint_id}/recover")
class RecoverDeliveries(View):
    @access(USER, owner=endpoint_owner)
    async def post(self, request: Request, endpoint_id: str) -> Response:
        body = await read_object(request, _RECOVER_BODY)
        raw = body.get("since")
        try:
            since = datetime.fromisoformat(raw) if isinstance(raw, str) and len(raw) <= 64 else None
        except ValueError:
            since = None
        if since is None or since.tzinfo is None:
            raise HttpError(400, f"the body must be {_RECOVER_BODY}")
        count = await recover(db.engine(), endpoint_id, since)
        return self.json({"endpoint_id": endpoint_id, "recovered": count}, status=202)


class _PauseView(View):
    paused = True

    @access(USER, owner=endpoint_owner)
    async def post(self, request: Request, endpoint_id: str) -> Response:
        if not await set_paused(db.engine(), endpoint_id, self.paused):
            raise HttpError(404, f"no webhook endpoint {endpoint_id!r}")
        return self.json({"endpoint_id": endpoint_id, "paused": self.paused})


@app.page("/webhooks/{endpoint_id}/pause")
class PauseEndpoint(_PauseView):
    paused = True


@app.page("/webhooks/{endpoint_id}/resume")
class ResumeEndpoint(_PauseView):
    paused = False
