"""The one error shape of the HTTP API: ``{"error": "<what was wrong and what to do>"}`` with a 4xx/5xx status.

Views, the request-reading helpers (web/inputs.py) and the access checks (web/auth.py) raise ``HttpError``; the
middleware (web/middleware.py) turns it into the response, so no module carries its own ``_error``/``_auth``.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web


class HttpError(Exception):
    """A request the API refuses: ``status`` (4xx) and a message that says what was wrong and what to do."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return error_response(self.status, self.message, self.headers)


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    # A message may quote client input; a lone surrogate in it (from undecodable header bytes) must not turn a
    # refusal into an encoding error.
    text = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return web.Response(
        body=orjson.dumps({"error": text}), status=status, content_type="application/json", headers=dict(headers or {})
    )
