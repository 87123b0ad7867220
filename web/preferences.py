"""A user's notification preferences over HTTP.

GET answers from the worker that owns the user's partition of the preferences table (others forward);
PUT validates the whole document and *produces* a ``preferences.updated`` event — the table is only ever
written by the agent that folds that topic, so an update is ordered, replayable and survives compaction.
Both take the user's own token (or the staff token): the document holds the user's email address and Discord
webhook, itself a credential.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from faust.web import Request, Response, View

from crownstream.agents.notifications_users import preferences
from crownstream.app import app
from crownstream.notifications.preferences import DEFAULTS, InvalidPreferences, parse_preferences
from crownstream.schemas.events import PreferencesUpdated
from crownstream.settings import get_settings
from crownstream.sinks.targets import TargetRefused, check_url
from crownstream.web.auth import USER, access
from crownstream.web.errors import HttpError
from crownstream.web.inputs import read_object
from crownstream.web.responses import routed
from crownstream.web.standings import _event_producer


@app.page("/users/{user_id}/preferences")
class UserPreferences(View):
    @access(USER, owner="user_id")
    @routed(preferences, "user_id")
    async def get(self, request: Request, user_id: str) -> Response:
        stored = preferences.get(user_id)
        return self.json(
            {
                "user_id": user_id,
                "defaults": stored is None,
                "preferences": stored if stored is not None else DEFAULTS.model_dump(mode="json"),
            }
        )

    @access(USER, owner="user_id")
    async def put(self, request: Request, user_id: str) -> Response:
        body = await read_object(request, "the user's preferences (see GET for the current document)")
        try:
            prefs = parse_preferences(body)
        except InvalidPreferences as exc:
            raise HttpError(422, f"invalid preferences: {exc}") from None
        if prefs.contact.discord_webhook_url:
            # The same outbound policy as webhook registration: a URL Discord deliveries could never reach (or
            # that points inside our network) is refused now, with the reason, not dead-lettered later.
            settings = get_settings()
            try:
                await check_url(
                    prefs.contact.discord_webhook_url,
                    settings.sink_allow_private_targets,
                    settings.sink_max_url_length,
                    client="httpx",
                )
            except TargetRefused as exc:
                raise HttpError(400, f"contact.discord_webhook_url is refused: {exc}") from None
        try:
            event = PreferencesUpdated(
                event_id=f"prefs-{uuid.uuid4()}",
                occurred_at=datetime.now(UTC),
                user_id=user_id,
                preferences=prefs.model_dump(mode="json"),
            )
        except ValueError as exc:
            raise HttpError(422, f"invalid user id {user_id!r}: {exc}") from None
        producer = await _event_producer()
        metadata = await producer.send_and_wait(event)
        return self.json(
            {"accepted": True, "event_id": event.event_id, "partition": metadata.partition, "offset": metadata.offset},
            status=202,
        )
