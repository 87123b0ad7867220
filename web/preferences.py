"""A user's notification preferences over HTTP.

GET answers from the worker that owns the user's partition of the preferences table (others forward);
PUT validates the whole document and *produces* a ``preferences.updated`` event — the table is only ever
written by the agent that folds that topic, so an update is ordered, replayable and survives compaction.
Both need the staff bearer token: they are called by the platform's backend on a user's behalf, and the
document holds the user's email address and Discord webhook.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from faust.web import Request, Response, View

from crownstream.agents.notifications_users import preferences
from crownstream.app import app
from crownstream.notifications.preferences import DEFAULTS, InvalidPreferences, parse_preferences
from crownstream.schemas.events import PreferencesUpdated
from crownstream.web.auth import Unauthorized, require_staff
from crownstream.web.responses import routed
from crownstream.web.standings import _event_producer


@app.page("/users/{user_id}/preferences")
class UserPreferences(View):
    @routed(preferences, "user_id")
    async def get(self, request: Request, user_id: str) -> Response:
        try:
            require_staff(request.headers.get("Authorization"))
        except Unauthorized as exc:
            return self.json({"error": str(exc)}, status=401)
        stored = preferences.get(user_id)
        return self.json({"user_id": user_id, "defaults": stored is None,
                          "preferences": stored if stored is not None else DEFAULTS.model_dump(mode="json")})

    async def put(self, request: Request, user_id: str) -> Response:
        try:
            require_staff(request.headers.get("Authorization"))
        except Unauthorized as exc:
            return self.json({"error": str(exc)}, status=401)
        try:
            body = await request.json()
        except ValueError:
            return self.json({"error": "body must be a JSON object of preferences"}, status=400)
        try:
            prefs = parse_preferences(body)
        except InvalidPreferences as exc:
            return self.json({"error": f"invalid preferences: {exc}"}, status=422)
        try:
            event = PreferencesUpdated(event_id=f"prefs-{uuid.uuid4()}", occurred_at=datetime.now(timezone.utc),
                                       user_id=user_id, preferences=prefs.model_dump(mode="json"))
        except ValueError as exc:
            return self.json({"error": f"invalid user id {user_id!r}: {exc}"}, status=422)
        producer = await _event_producer()
        metadata = await producer.send_and_wait(event)
        return self.json({"accepted": True, "event_id": event.event_id, "partition": metadata.partition,
                          "offset": metadata.offset}, status=202)
