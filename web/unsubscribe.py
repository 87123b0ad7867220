"""One-click unsubscribe (RFC 8058), the target of every non-critical email's ``List-Unsubscribe`` header.

GET shows a page with a button and changes nothing: mail scanners and link previews fetch links, and
must not unsubscribe anyone. POST (the mail client's one-click ``List-Unsubscribe=One-Click``, or the
page's button) checks the signed key and *produces* a ``preferences.updated`` event with the type taken
off email — the preferences table is only written by its agent. The event id is derived from the link, so
clicking twice changes nothing more.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from faust.web import Request, Response, View

from crownstream.agents.notifications_users import preferences
from crownstream.app import app
from crownstream.notifications.preferences import DEFAULTS, InvalidPreferences, parse_preferences
from crownstream.notifications.unsubscribe import ALL_TYPES, key_is_valid, without_email
from crownstream.schemas.events import PreferencesUpdated
from crownstream.settings import get_settings
from crownstream.web.auth import PUBLIC, access
from crownstream.web.pages import page_csp
from crownstream.web.responses import routed
from crownstream.web.standings import _event_producer

# The page's only script-like content is its form; inline style="" attributes are its only styling.
_CSP = page_csp(inline_style_attrs=True, form_self=True)


def _page(view: View, status: int, title: str, message: str, form_action: str | None = None) -> Response:
    button = (
        f'<form method="post" action="{html.escape(form_action)}">'
        '<button type="submit" name="List-Unsubscribe" value="One-Click">Unsubscribe</button></form>'
        if form_action
        else ""
    )
    body = (
        f'<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title></head>'
        f'<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem">'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{button}</body></html>"
    )
    return view.bytes(
        body.encode(),
        content_type="text/html",
        status=status,
        headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-store"},
    )


def _what(kind: str) -> str:
    return "all email from us" if kind == ALL_TYPES else f"email about {kind.replace('.', ' ')}"


@app.page("/users/{user_id}/unsubscribe")
class Unsubscribe(View):
    def _checked(self, request: Request, user_id: str) -> tuple[str, str] | Response:
        kind, key = request.query.get("type", ""), request.query.get("key", "")
        if not (key.isascii() and kind.isascii()):  # keys and types are ASCII; hmac.compare_digest raises
            kind, key = "", ""  # TypeError on other text (a 500, not a refusal)
        if not kind or not key_is_valid(get_settings().unsubscribe_key, user_id, kind, key):
            return _page(
                self,
                403,
                "This link is not valid",
                "The unsubscribe link is incomplete or was not issued for this address. Use the link "
                "from the email itself, or change your notification settings in the app.",
            )
        return kind, key

    @access(PUBLIC)  # the link's own HMAC key is the credential (checked in _checked)
    async def get(self, request: Request, user_id: str) -> Response:
        checked = self._checked(request, user_id)
        if not isinstance(checked, tuple):
            return checked
        kind, _ = checked
        return _page(self, 200, "Unsubscribe?", f"Stop receiving {_what(kind)}?", form_action=request.path_qs)

    @access(PUBLIC)  # the link's own HMAC key is the credential (checked in _checked)
    @routed(preferences, "user_id")
    async def post(self, request: Request, user_id: str) -> Response:
        checked = self._checked(request, user_id)
        if not isinstance(checked, tuple):
            return checked
        kind, key = checked
        stored = preferences.get(user_id)
        try:
            current = parse_preferences(stored) if stored is not None else DEFAULTS
            updated = without_email(current, kind)
        except (InvalidPreferences, ValueError) as exc:
            return _page(self, 422, "Could not unsubscribe", str(exc))
        if updated != current:
            event = PreferencesUpdated(
                event_id=f"unsubscribe-{key[:40]}",
                occurred_at=datetime.now(UTC),
                user_id=user_id,
                preferences=updated.model_dump(mode="json"),
            )
            producer = await _event_producer()
            await producer.send_and_wait(event)
        return _page(
            self,
            200,
            "Unsubscribed",
            f"You will no longer receive {_what(kind)}. "
            "Payment and payout receipts are still sent unless you "
            "unsubscribed from all email.",
        )
