"""Serving a keyed query from whichever worker receives it."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import faust
from faust.web import Request, Response, View

from crownstream.web.routing import NotReady, forward, owner_of

#: Headers of the owner's answer that the forwarding worker passes on: a page's own Content-Security-Policy
#: (its script nonce; without it the default policy would block the page's script), a 401's challenge, a 503's
#: Retry-After.
_RELAYED_HEADERS = ("Retry-After", "Content-Security-Policy", "Cache-Control", "WWW-Authenticate")


def not_ready(view: View, exc: NotReady) -> Response:
    response = view.json({"error": "not ready", "reason": exc.reason, "retry_after": exc.retry_after}, status=503)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def routed(table: faust.Table, key_arg: str) -> Callable:
    """Decorate a View method so that it runs on the worker that owns ``kwargs[key_arg]`` in ``table``.

    On the owner the method runs; elsewhere the request is forwarded to the owner once; while the group
    rebalances or the table recovers the answer is 503 with Retry-After — never a stale or empty table.
    """

    def decorate(method: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
        @functools.wraps(method)
        async def wrapper(self: View, request: Request, **kwargs: str) -> Response:
            key = kwargs[key_arg]
            try:
                owner = owner_of(self.app, table, key)
                if owner.is_self:
                    return await method(self, request, **kwargs)
                body = await request.read() if request.method in ("POST", "PUT", "PATCH") else None
                upstream = await forward(
                    owner,
                    request.method,
                    request.path_qs,
                    dict(request.headers),
                    body,
                    str(self.app.conf.canonical_url),
                )
            except NotReady as exc:
                return not_ready(self, exc)
            response = self.bytes(
                upstream.content,
                content_type=upstream.headers.get("content-type", "application/json").split(";")[0],
                status=upstream.status_code,
            )
            for name in _RELAYED_HEADERS:
                if name in upstream.headers:
                    response.headers[name] = upstream.headers[name]
            return response

        return wrapper

    return decorate
