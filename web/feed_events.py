"""The in-app feed's live stream: ``GET /users/{user_id}/feed/events`` (server-sent events), the user's token or
staff, served by any worker.

Events:
- ``hello`` once: ``{"user_id", "after"}`` — the item id the stream starts after (``retry:`` set with it);
- ``item`` (``id:`` = the item id): each new item of the user, oldest first, as the list shows it;
- ``counts`` (no id): ``{"unread_count", "unseen_count"}`` on connect and whenever either changes — an item
  written, or items seen, read, archived or un-archived from any tab, device or worker;
- ``expired``: the user token ran out; reconnect with a fresh one (the stream ends).

Resuming: an ``item``'s id is its feed id (monotonic), and a reconnecting EventSource sends the last one as
``Last-Event-ID``; the stream then sends every item after it, none twice (``?after=<id>`` does the same for a
client that just loaded the list). Without either it starts from the newest item. Counts events carry no id, so
they never move the cursor.

The push comes from PostgreSQL (sinks/feed_live.py: one LISTEN connection per worker, fanned out by
sinks/feed_hub.py), so an item written by any worker reaches every worker's streams. Like the leaderboard's
streams: aiohttp-sse pings every ``feed_stream_ping_s`` (proxies keep the connection, a viewer who left is
noticed), and a stopping worker ends its streams first so that it exits at once; clients reconnect elsewhere.
Browsers' built-in EventSource cannot send an Authorization header: use a fetch-based client. Tokens are not taken
from the query string, where they would end up in access logs and browser history.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

import jwt
import orjson
from aiohttp import web as aioweb
from aiohttp_sse import EventSourceResponse
from faust.web import Request, View
from sqlalchemy.exc import SQLAlchemyError

from crownstream.app import app
from crownstream.settings import get_settings
from crownstream.sinks import db
from crownstream.sinks.feed import items_after, latest_id
from crownstream.sinks.feed_hub import HUB, Wake
from crownstream.sinks.feed_live import LISTENER
from crownstream.web.auth import USER, access
from crownstream.web.errors import HttpError
from crownstream.web.feed_inputs import resume_after

log = logging.getLogger(__name__)

#: Items read per query while catching up; a long catch-up is sent in pages of this many.
PAGE = 100
#: PostgreSQL unreachable, going away or the pool exhausted: the stream ends (or is refused with a 503) and the client
#: reconnects and resumes, rather than a handler failing after its answer began.
_DB_DOWN = (SQLAlchemyError, OSError)


def token_expiry(authorization: str | None) -> float | None:
    """When the (already verified) user token of the request expires, as a Unix time; None for the staff token,
    which does not expire. A stream authenticated once must not outlive its credential."""
    token = (authorization or "").strip().partition(" ")[2].strip()
    if token.count(".") != 2:
        return None
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.InvalidTokenError:
        return None
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


@app.page("/users/{user_id}/feed/events")
class FeedEvents(View):
    @access(USER, owner="user_id")
    async def get(self, request: Request, user_id: str) -> aioweb.StreamResponse:
        settings = get_settings()
        after = resume_after(request.headers.get("Last-Event-ID"), request.query.get("after"))
        refusal = HUB.refusal(user_id, settings.feed_stream_max_per_user, settings.feed_stream_max_per_worker)
        if refusal is not None:
            raise HttpError(429, refusal, {"Retry-After": str(max(1, settings.feed_stream_retry_ms // 1000))})
        LISTENER.ensure_started(settings.database_url, settings.feed_listener_health_s)
        expires_at = token_expiry(request.headers.get("Authorization"))
        # Subscribed before the first read: a change committed between the read and the wait wakes it again.
        with HUB.subscribe(user_id) as subscription:
            if after is None:
                try:
                    after = await latest_id(db.engine(), user_id)
                except _DB_DOWN as exc:
                    raise HttpError(
                        503,
                        f"the feed's database is unreachable ({exc.__class__.__name__}); retry shortly",
                        {"Retry-After": "2"},
                    ) from None
            return await _stream(request, user_id, after, subscription, expires_at)


async def _stream(request: Request, user_id: str, after: int, subscription, expires_at: float | None):
    settings = get_settings()
    engine = db.engine()
    response = EventSourceResponse(ping_interval=settings.feed_stream_ping_s)
    await response.prepare(cast(aioweb.Request, request))  # Faust's Request is aiohttp's under its web driver
    sent_counts: dict[str, int] | None = None
    async with response:
        try:
            hello = orjson.dumps({"user_id": user_id, "after": after}).decode()
            await response.send(hello, event="hello", retry=settings.feed_stream_retry_ms)
            while True:
                items, counts = await items_after(engine, user_id, after, PAGE)
                for item in items:
                    await response.send(orjson.dumps(item).decode(), event="item", id=str(item["id"]))
                    after = item["id"]
                if counts != sent_counts:
                    await response.send(orjson.dumps(counts).decode(), event="counts")
                    sent_counts = counts
                if len(items) == PAGE:
                    continue  # more to catch up on
                while True:
                    wait = settings.feed_stream_ping_s
                    if expires_at is not None:
                        wait = min(wait, max(0.0, expires_at - time.time()))
                    woke = await subscription.wait(timeout=wait)
                    if woke is Wake.CLOSED:
                        return response
                    if expires_at is not None and time.time() >= expires_at:
                        message = "the user token expired; reconnect with a fresh one (Last-Event-ID resumes)"
                        await response.send(orjson.dumps({"error": message}).decode(), event="expired")
                        return response
                    if woke is Wake.CHANGED:
                        break
                    if not response.is_connected():
                        return response  # the client left; aiohttp-sse's pings noticed
        except ConnectionResetError:
            return response
        except _DB_DOWN as exc:
            # The client reconnects (retry) and resumes from its last item; nothing is lost, nothing sent twice.
            log.warning("live feed stream ended: the database is unreachable", extra={"error": exc.__class__.__name__})
            return response
    return response


async def _end_feed_streams(sender: Any, **kwargs: Any) -> None:
    """As the leaderboard's streams (web/leaderboard.py): a stopping worker ends its streams before its web server
    waits for running handlers, so an open feed does not hold up its exit; clients reconnect and resume."""
    closed = HUB.close_all()
    if closed:
        log.info("shutting down: ended %d live feed streams", closed)
    await LISTENER.stop()


# (mypy cannot match an async receiver against mode's signal signature; the leaderboard's is unchecked.)
app.on_before_shutdown.connect(cast(Any, _end_feed_streams))
