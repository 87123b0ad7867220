"""Status of a scheduled notification: pending, sent or cancelled (any worker answers; owner-routed). Staff only:
a schedule is the platform's, and its id says nothing about which users it reaches."""

from __future__ import annotations

from faust.web import Request, Response, View

from crownstream.agents.notifications import schedules
from crownstream.app import app
from crownstream.web.auth import STAFF, access
from crownstream.web.errors import HttpError
from crownstream.web.responses import routed


@app.page("/notifications/scheduled/{notification_id}")
class ScheduledStatus(View):
    @access(STAFF)
    @routed(schedules, "notification_id")
    async def get(self, request: Request, notification_id: str) -> Response:
        current = schedules.get(notification_id)
        if current is None:
            raise HttpError(404, f"no scheduled notification {notification_id!r} is known")
        return self.json(
            {
                "notification_id": notification_id,
                "status": current["status"],
                "send_at": current["send_at"],
                "cancelled_by": current["cancelled_by"],
            }
        )
