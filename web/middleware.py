"""What every response of a worker's web server goes through (installed by crownstream/app.py on the aiohttp
application Faust creates):

- path parameters checked for every route (length, control characters) before any view sees them;
- ``HttpError`` and aiohttp's own HTTP errors (404 no such route, 405, 413 body too large) as JSON;
- any other exception of a view as a JSON 500 without its traceback, logged once — bad input must never get
  here (tests count these), but a bug must not hand a stack trace to the client;
- default security headers on every response, pages and event streams included (set just before the headers
  go out, so a view's own Content-Security-Policy wins).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from crownstream.web.errors import HttpError, error_response
from crownstream.web.inputs import check_path_params

log = logging.getLogger(__name__)

#: For JSON and anything else that is not a page: nothing may load, nothing may frame it.
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DEFAULT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": DEFAULT_CSP,
    "Cross-Origin-Resource-Policy": "same-origin",
}


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        check_path_params(request.match_info)
        return await handler(request)
    except HttpError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and other non-errors pass as aiohttp made them
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after", "www-authenticate")}
        return error_response(exc.status, _aiohttp_message(exc), headers)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        # Path only: a query string may carry an unsubscribe key; headers carry tokens.
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return error_response(
            500, "internal error (logged on the worker); this is a bug, not your request — retry later or report it"
        )


def _aiohttp_message(exc: web.HTTPException) -> str:
    if exc.status == 404:
        return "no such route; GET /openapi.json lists every route this worker serves"
    if exc.status == 405:
        return f"method not allowed; allowed: {exc.headers.get('Allow', '')}"
    if exc.status == 413:
        return f"the request body is too large ({exc.text or exc.reason})"
    return exc.reason or "bad request"


async def default_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in DEFAULT_HEADERS.items():
        response.headers.setdefault(name, value)


def install(web_app: web.Application) -> None:
    """Add the middleware and the header hook to the application (before the server starts)."""
    web_app.middlewares.append(json_errors)
    web_app.on_response_prepare.append(default_headers)
