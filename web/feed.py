"""In-app feed API, served by every worker (the feed is in PostgreSQL, so no routing to an owner).

    GET  /users/{user_id}/feed?limit=20&before=<id>&unread=true&archived=true   newest first, keyset pages, counts
    POST /users/{user_id}/feed/seen       }
    POST /users/{user_id}/feed/read       }  {"ids": [..]}, {"up_to": <id>} or {"all": true}
    POST /users/{user_id}/feed/archive    }  (sinks/feed_states.py says what each state means)
    POST /users/{user_id}/feed/unarchive  }
    GET  /users/{user_id}/feed/events     the live stream (web/feed_events.py)

Called by the user's client with the user's own token, or by the platform backend with the staff token
(web/auth.py). A change touches only that user's items and is idempotent: it answers how many items it changed
(0 the second time) and the counts after it.
"""

from __future__ import annotations

from faust.web import Request, Response, View

from crownstream.app import app
from crownstream.sinks import db
from crownstream.sinks.feed import change_state, feed_counts, list_feed
from crownstream.web.auth import USER, access
from crownstream.web.feed_inputs import SELECTION_BODY, selection
from crownstream.web.inputs import INT64_MAX, query_int, read_object

MAX_PAGE = 100


def _flag(request: Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


@app.page("/users/{user_id}/feed")
class Feed(View):
    @access(USER, owner="user_id")
    async def get(self, request: Request, user_id: str) -> Response:
        limit = query_int(request, "limit", 20, 1, MAX_PAGE)
        # ``before``: the previous page's next_before; ids are bigserial, so anything past int64 names nothing.
        before = query_int(request, "before", None, 0, INT64_MAX)
        page = await list_feed(
            db.engine(),
            user_id,
            limit=limit,
            before=before,
            unread_only=_flag(request, "unread"),
            archived=_flag(request, "archived"),
        )
        return self.json(page)


async def _change(request: Request, user_id: str, action: str) -> dict:
    chosen = selection(await read_object(request, SELECTION_BODY))
    changed = await change_state(db.engine(), user_id, action, chosen)
    return {"changed": changed, **await feed_counts(db.engine(), user_id)}


@app.page("/users/{user_id}/feed/seen")
class FeedSeen(View):
    @access(USER, owner="user_id")
    async def post(self, request: Request, user_id: str) -> Response:
        return self.json(await _change(request, user_id, "seen"))


@app.page("/users/{user_id}/feed/read")
class FeedRead(View):
    @access(USER, owner="user_id")
    async def post(self, request: Request, user_id: str) -> Response:
        result = await _change(request, user_id, "read")
        return self.json({"marked_read": result["changed"], **result})


@app.page("/users/{user_id}/feed/archive")
class FeedArchive(View):
    @access(USER, owner="user_id")
    async def post(self, request: Request, user_id: str) -> Response:
        return self.json(await _change(request, user_id, "archive"))


@app.page("/users/{user_id}/feed/unarchive")
class FeedUnarchive(View):
    @access(USER, owner="user_id")
    async def post(self, request: Request, user_id: str) -> Response:
        return self.json(await _change(request, user_id, "unarchive"))
