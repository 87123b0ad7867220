"""Staff authentication for endpoints that change results."""

from __future__ import annotations

import hmac

from crownstream.settings import get_settings


class Unauthorized(Exception):
    pass


def require_staff(authorization: str | None) -> None:
    """Bearer token check in constant time. With no token configured, staff endpoints refuse everyone:
    an unset secret must never mean "open"."""
    expected = get_settings().staff_token
    if not expected:
        raise Unauthorized("staff endpoints are disabled: set CROWNSTREAM_STAFF_TOKEN on the workers")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("a valid staff bearer token is required (Authorization: Bearer <token>)")
