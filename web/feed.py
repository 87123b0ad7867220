"""In-app feed API, served by every worker (the feed is in PostgreSQL, so no routing to an owner).

    GET  /users/{user_id}/feed?limit=20&before=<id>&unread=true   newest first, keyset pages, unread count
    POST /users/{user_id}/feed/read   {"ids": [..]} or {"all": true}

Called by the platform's backend on behalf of its signed-in user, with the service's bearer token
(``CROWNSTREAM_STAFF_TOKEN``): Crownstream has no end-user sessions of its own.
"""

from __future__ import annotations

from faust.web import Request, Response, View

from crownstream.app import app
from crownstream.sinks import db
from crownstream.sinks.feed import list_feed, mark_read
from crownstream.web.auth import Unauthorized, require_staff

MAX_PAGE = 100


def _error(view: View, status: int, message: str) -> Response:
    return view.json({"error": message}, status=status)


@app.page("/users/{user_id}/feed")
class Feed(View):
    async def get(self, request: Request, user_id: str) -> Response:
        try:
            require_staff(request.headers.get("Authorization"))
        except Unauthorized as exc:
            return _error(self, 401, str(exc))
        try:
            limit = int(request.query.get("limit", 20))
            before = int(request.query["before"]) if request.query.get("before") else None
        except ValueError:
            return _error(self, 400, "limit and before must be integers (before = the previous page's next_before)")
        if not 1 <= limit <= MAX_PAGE:
            return _error(self, 400, f"limit must be between 1 and {MAX_PAGE}")
        unread = request.query.get("unread", "").lower() in ("1", "true", "yes")
        return self.json(await list_feed(db.engine(), user_id, limit=limit, before=before, unread_only=unread))


@app.page("/users/{user_id}/feed/read")
class FeedRead(View):
    async def post(self, request: Request, user_id: str) -> Response:
        try:
            require_staff(request.headers.get("Authorization"))
        except Unauthorized as exc:
            return _error(self, 401, str(exc))
        try:
            body = await request.json()
        except ValueError:
            body = None
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not (body.get("all") is True or
                                              (isinstance(ids, list) and all(isinstance(i, int) for i in ids))):
            return _error(self, 400, 'body must be {"ids": [<item id>, …]} or {"all": true}')
        changed = await mark_read(db.engine(), user_id, None if body.get("all") is True else ids)
        page = await list_feed(db.engine(), user_id, limit=1)
        return self.json({"marked_read": changed, "unread_count": page["unread_count"]})
