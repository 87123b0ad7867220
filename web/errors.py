"""The one error shape of the HTTP API: ``{"error": "<what was wrong and what to do>"}`` with a 4xx/5xx status.

Views, the request-reading helpers (web/inputs.py) and the access checks (web/auth.py) raise ``HttpError``; the
middleware (web/middleware.py) turns it into the response, so no module carries its own ``_error``/``_auth``.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

from crownstream.errors import CrownstreamError


class WebError(CrownstreamError):
    """Root of the errors of crownstream.web."""


class HttpError(WebError):
    """A request the API refuses: ``status`` (4xx) and a message that says what was wrong and what to do."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return error_response(self.status, self.message, self.headers)


class NotReady(WebError):
    """The answer cannot be trusted now (rebalance or recovery under way); the client should retry."""

    def __init__(self, reason: str, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    # A message may quote client input; a lone surrogate in it (from undecodable header bytes) must not turn a
    # refusal into an encoding error.
    text = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return web.Response(
        body=orjson.dumps({"error": text}), status=status, content_type="application/json", headers=dict(headers or {})
    )
