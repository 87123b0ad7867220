"""HTML pages' safety: a Content-Security-Policy per page and JSON that can sit inside a ``<script>`` element.

Pure functions; the views (web/leaderboard.py, web/unsubscribe.py) use them.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

# Inside <script>, the HTML parser ends the element at "</script" and treats "<!--" / "<script" specially,
# whatever JSON thinks of the string; U+2028/2029 end a line in older JavaScript. Escaped as \uXXXX they are
# the same JSON string, and no team name can end or confuse the element.
_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def json_for_script(value: Any) -> str:
    """``value`` as JSON safe to embed verbatim between ``<script type="application/json">`` tags."""
    return orjson.dumps(value).decode().translate(_SCRIPT_ESCAPES)


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def _sources(*sources: str | None) -> str:
    return " ".join(s for s in sources if s) or "'none'"


def page_csp(
    nonce: str | None = None, *, connect_self: bool = False, inline_style_attrs: bool = False, form_self: bool = False
) -> str:
    """The policy of one page: nothing but its own nonce'd script and style, and what it names explicitly.

    ``inline_style_attrs`` allows ``style=""`` attributes (CSS only; scripts still need the nonce)."""
    nonce_source = f"'nonce-{nonce}'" if nonce else None
    self_source = "'self'"
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {_sources(nonce_source)}",
            "style-src " + _sources(nonce_source, "'unsafe-inline'" if inline_style_attrs else None),
            "img-src 'self' data:",
            f"connect-src {_sources(self_source if connect_self else None)}",
            f"form-action {_sources(self_source if form_self else None)}",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )
