"""Who may call what: two credentials, one access check for every view.

- **staff**: ``Authorization: Bearer <CROWNSTREAM_STAFF_TOKEN>`` — overrides, endpoint administration, ops views,
  and any user's data (the platform backend acting for support staff).
- **user**: ``Authorization: Bearer <user token>`` — a JWT (HS256) the platform backend mints for its signed-in
  user with CROWNSTREAM_USER_TOKEN_KEY (``mint_user_token`` or ``crownstream token mint``): ``sub`` = user id,
  ``iat`` and ``exp`` required, a lifetime of at most ``user_token_max_ttl_s``. It opens that user's own
  preferences, feed and webhooks, nothing else.

Views declare their policy with ``@access(STAFF)``, ``@access(USER, owner="user_id")`` or ``@access(PUBLIC)``;
the OpenAPI document reads the declaration (``policy_of``), so what a route requires and what it documents
cannot drift apart. A refusal is an ``HttpError``: 401 when the credential is missing or invalid (send one),
403 when it is valid but not enough (this is someone else's data, or staff only).
"""

from __future__ import annotations

import functools
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt

from crownstream.settings import Settings, get_settings
from crownstream.web.errors import HttpError
from crownstream.web.inputs import bad_character

STAFF, USER, PUBLIC = "staff", "user", "public"
AUDIENCE = "crownstream"
#: Clock skew tolerated between the platform backend that mints tokens and the workers.
LEEWAY_S = 30
_ALGORITHM = "HS256"
_WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="crownstream"'}


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # STAFF or USER
    user_id: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.kind == STAFF


def mint_user_token(user_id: str, ttl_s: int, settings: Settings | None = None) -> str:
    """A bearer token for ``user_id``, valid for ``ttl_s`` seconds (at most ``user_token_max_ttl_s``)."""
    settings = settings or get_settings()
    key = settings.user_token_signing_key
    if key is None:
        raise ValueError(
            "CROWNSTREAM_USER_TOKEN_KEY is not set: no user token can be minted (set it to the key the workers share)"
        )
    if not 0 < ttl_s <= settings.user_token_max_ttl_s:
        raise ValueError(f"ttl_s must be between 1 and {settings.user_token_max_ttl_s} (user_token_max_ttl_s)")
    if not user_id or len(user_id) > 128 or bad_character(user_id) is not None:
        raise ValueError("user_id must be 1-128 printable characters")
    now = int(time.time())
    return jwt.encode({"sub": user_id, "iat": now, "exp": now + ttl_s, "aud": AUDIENCE}, key, algorithm=_ALGORITHM)


def _unauthorized(message: str) -> HttpError:
    return HttpError(401, message, _WWW_AUTHENTICATE)


def authenticate(authorization: str | None, settings: Settings | None = None) -> Principal:
    """The principal an ``Authorization`` header proves, or a 401 ``HttpError`` saying what to send."""
    settings = settings or get_settings()
    if not authorization:
        raise _unauthorized(
            "authentication required: send Authorization: Bearer <token> (a user token minted by "
            "the platform backend, or the staff token)"
        )
    # aiohttp hands undecodable header bytes over as surrogates; a token is printable ASCII (RFC 6750 b64token).
    if not authorization.isascii() or not authorization.isprintable():
        raise _unauthorized(
            "the Authorization header is malformed (non-ASCII or control characters); send "
            "Authorization: Bearer <token>"
        )
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("only bearer tokens are accepted: send Authorization: Bearer <token>")
    staff = settings.staff_token
    # Compared whatever the token looks like, so the time taken says nothing about which kind it was.
    if staff and hmac.compare_digest(token.encode(), staff.encode()):
        return Principal(STAFF)
    if token.count(".") != 2:
        unset = "" if staff else " (no staff token is configured on this worker: CROWNSTREAM_STAFF_TOKEN)"
        raise _unauthorized(
            "the bearer token is neither the staff token nor a user token; ask the platform "
            f"backend for a fresh user token{unset}"
        )
    return Principal(USER, _verify_user_token(token, settings))


def _verify_user_token(token: str, settings: Settings) -> str:
    key = settings.user_token_signing_key
    if key is None:
        raise _unauthorized("user tokens are not accepted by this worker: CROWNSTREAM_USER_TOKEN_KEY is not set")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[_ALGORITHM],
            leeway=LEEWAY_S,
            options={"require": ["sub", "iat", "exp"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("the user token has expired; ask the platform backend for a new one") from None
    except jwt.ImmatureSignatureError:
        raise _unauthorized("the user token is not valid yet (issued in the future); check the clocks") from None
    except jwt.InvalidTokenError as exc:
        raise _unauthorized(
            f"the user token is invalid ({exc.__class__.__name__}); ask the platform backend for a new one"
        ) from None
    aud = claims.get("aud")
    if aud is not None and aud != AUDIENCE and not (isinstance(aud, list) and AUDIENCE in aud):
        raise _unauthorized(f"the user token is for another audience; Crownstream accepts aud={AUDIENCE!r}")
    iat, exp, sub = claims["iat"], claims["exp"], claims["sub"]
    if type(iat) not in (int, float) or type(exp) not in (int, float) or exp - iat > settings.user_token_max_ttl_s:
        raise _unauthorized(
            f"the user token lives longer than {settings.user_token_max_ttl_s} s "
            "(user_token_max_ttl_s); mint one with a shorter lifetime"
        )
    if not isinstance(sub, str) or not sub or len(sub) > 128 or bad_character(sub) is not None:
        raise _unauthorized("the user token names no valid user (sub)")
    return sub


def authorize(principal: Principal, policy: str, owner_id: str | None = None) -> None:
    """403 unless ``principal`` may act under ``policy`` on data of ``owner_id``."""
    if principal.is_staff or policy == PUBLIC:
        return
    if policy == STAFF:
        raise HttpError(403, "staff only: this route needs the staff token, a user token is not enough")
    if owner_id is None or principal.user_id != owner_id:
        raise HttpError(
            403,
            f"this user token is for {principal.user_id!r} and may only read or change that "
            "user's own data; use a token minted for the owner",
        )


OwnerLookup = Callable[[Any, dict[str, str]], Awaitable[str]]


def access(policy: str, owner: str | OwnerLookup | None = None) -> Callable:
    """Declare and enforce who may call a view method.

    ``owner`` (USER only): the path parameter holding the owning user's id, or an async ``lookup(request,
    path_params) -> user_id`` for resources named by their own id (a webhook endpoint); a lookup raises
    ``HttpError(404)`` for a resource that does not exist."""
    if policy not in (STAFF, USER, PUBLIC):
        raise ValueError(f"unknown access policy {policy!r}")
    if (policy == USER) != (owner is not None):
        raise ValueError("owner is required for USER routes, and only for them")

    def decorate(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(method)
        async def checked(self, request, **kwargs: str) -> Any:
            if policy != PUBLIC:
                principal = authenticate(request.headers.get("Authorization"))
                owner_id = None
                if policy == USER and not principal.is_staff:
                    owner_id = kwargs[owner] if isinstance(owner, str) else await owner(request, kwargs)
                authorize(principal, policy, owner_id)
            return await method(self, request, **kwargs)

        checked.access_policy = policy  # read by the OpenAPI document (policy_of)
        return checked

    return decorate


def policy_of(method: Callable) -> str | None:
    """The policy a view method declared with ``@access``; None if it declared none (a defect the tests catch)."""
    return getattr(method, "access_policy", None)
