"""In-app feed API, served by every worker (the feed is in PostgreSQL, so no routing to an owner).

    GET  /users/{user_id}/feed?limit=20&before=<id>&unread=true   newest first, keyset pages, unread count
    POST /users/{user_id}/feed/read   {"ids": [..]} or {"all": true}

Called by the user's client with the user's own token, or by the platform backend with the staff token
(web/auth.py).
"""

from __future__ import annotations

from faust.web import Request, Response, View

from crownstream.app import app
from crownstream.sinks import db
from crownstream.sinks.feed import list_feed, mark_read
from crownstream.web.auth import USER, access
from crownstream.web.errors import HttpError
from crownstream.web.inputs import INT64_MAX, id_list, query_int, read_object

MAX_PAGE = 100
_READ_BODY = '{"ids": [<item id>, …]} or {"all": true}'


@app.page("/users/{user_id}/feed")
class Feed(View):
    @access(USER, owner="user_id")
    async def get(self, request: Request, user_id: str) -> Response:
        limit = query_int(request, "limit", 20, 1, MAX_PAGE)
        # ``before``: the previous page's next_before; ids are bigserial, so anything past int64 names nothing.
        before = query_int(request, "before", None, 0, INT64_MAX)
        unread = request.query.get("unread", "").lower() in ("1", "true", "yes")
        return self.json(await list_feed(db.engine(), user_id, limit=limit, before=before, unread_only=unread))


@app.page("/users/{user_id}/feed/read")
class FeedRead(View):
    @access(USER, owner="user_id")
    async def post(self, request: Request, user_id: str) -> Response:
        body = await read_object(request, _READ_BODY)
        if body.get("all") is True:
            ids = None
        elif "ids" in body:
            ids = id_list(body["ids"], "ids")
        else:
            raise HttpError(400, f"the body must be {_READ_BODY}")
        changed = await mark_read(db.engine(), user_id, ids)
        page = await list_feed(db.engine(), user_id, limit=1)
        return self.json({"marked_read": changed, "unread_count": page["unread_count"]})
