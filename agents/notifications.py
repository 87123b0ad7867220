"""Notification sources: domain events become notices on their way to their audience; scheduled
notifications and broadcasts.

- tournament events are handled inside the tournament-events agent (``handles``), platform events,
  standings outputs and notification control by agents of their own; invalid records (and records whose
  handling raised) are dead-lettered by ``process_events`` like everywhere else.
- membership events (roster changes, accepted invites, registrations) update the audience tables first,
  through the same keyed topic as the notices that follow them, so a new member hears of the next event.
- ``notification-schedules`` (notification_id -> status, send_at, the event) is written from the control
  topic and the timers topic, both keyed by notification_id: a schedule's owner fires or cancels it, in a
  transaction, so it survives restarts and rebalances and fires once. Status: pending | sent | cancelled.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime

from crownstream.agents.audiences import members_op, register_op
from crownstream.agents.decoding import input_topic, process_events
from crownstream.agents.notifications_common import CLOCK, dispatch
from crownstream.agents.notifications_users import register_timer_op, tick
from crownstream.agents.tournament_events import Stage, handles
from crownstream.app import app
from crownstream.metrics import DUPLICATES
from crownstream.notifications.catalog import BY_EVENT, notice_for
from crownstream.schemas import events as ev
from crownstream.settings import get_settings
from crownstream.streams.topics import NOTIFICATION_CONTROL, PLATFORM_EVENTS, STANDINGS_EVENTS, TOURNAMENT_EVENTS

log = logging.getLogger(__name__)

broadcasts = app.Table(
    "notification-broadcasts",
    default=None,
    partitions=NOTIFICATION_CONTROL.partition_count(),
    help="broadcast_id -> the event that started it (a resent request is not fanned out again)",
)
schedules = app.Table(
    "notification-schedules",
    default=None,
    partitions=NOTIFICATION_CONTROL.partition_count(),
    help="notification_id -> scheduled notification and its status",
)


async def membership(event: ev.Envelope) -> None:
    if event.type == "roster.changed":
        await members_op(event.team_id, list(event.added), list(event.removed))
    elif event.type == "invite.accepted":
        await members_op(event.team_id, [event.user_id], [])
    elif event.type == "tournament.registered":
        await register_op(event.tournament_id, event.team_id)
        if event.user_ids:
            await members_op(event.team_id, list(event.user_ids), [])


async def notify_event(event: ev.Envelope) -> None:
    await membership(event)
    built = notice_for(event)
    if built is not None:
        await dispatch(*built)


# Tournament events that notify someone; handled inside the tournament-events agent (one consumer, one
# decode per record), after the standings and series handlers of the same event (Stage.NOTIFY runs last).
TOURNAMENT_TYPES = tuple(t for t in BY_EVENT if t in TOURNAMENT_EVENTS.event_types)
handles(*TOURNAMENT_TYPES, stage=Stage.NOTIFY)(notify_event)


@app.agent(input_topic(PLATFORM_EVENTS), name="platform-notifications")
async def platform_notifications(stream) -> None:
    await process_events(stream, "platform-notifications", notify_event)


@app.agent(input_topic(STANDINGS_EVENTS), name="standings-notifications")
async def standings_notifications(stream) -> None:
    await process_events(stream, "standings-notifications", notify_event)


# --- scheduled notifications and broadcasts --------------------------------------------------------------


async def apply_control(event: ev.Envelope) -> None:
    if event.type == "notification.scheduled":
        if schedules.get(event.notification_id) is not None:
            DUPLICATES.labels(event.type).inc()  # a replay, or an id reused after a cancel: first one wins
            return
        schedules[event.notification_id] = {
            "status": "pending",
            "send_at": event.send_at.isoformat(),
            "event": event.model_dump(mode="json"),
            "cancelled_by": None,
        }
    elif event.type == "notification.cancelled":
        current = schedules.get(event.notification_id)
        if current is None:
            # Cancelled before its schedule arrived: remembered, so the schedule never fires.
            schedules[event.notification_id] = {
                "status": "cancelled",
                "send_at": None,
                "event": None,
                "cancelled_by": event.event_id,
            }
        elif current["status"] == "pending":
            schedules[event.notification_id] = {**current, "status": "cancelled", "cancelled_by": event.event_id}
    elif event.type == "broadcast.requested":
        # A resent request would walk the whole audience again; the sinks would drop every request as a
        # duplicate, but only after the fan-out's full cost.
        if broadcasts.get(event.broadcast_id) is not None:
            DUPLICATES.labels(event.type).inc()
            return
        built = notice_for(event)  # before the mark: a failure here leaves nothing half-done
        broadcasts[event.broadcast_id] = event.event_id
        await dispatch(*built)


@app.agent(input_topic(NOTIFICATION_CONTROL), name="notification-control")
async def notification_control(stream) -> None:
    await process_events(stream, "notification-control", apply_control)


async def fire_schedule(notification_id: str, now: datetime) -> None:
    current = schedules.get(notification_id)
    if current is None or current["status"] != "pending" or datetime.fromisoformat(current["send_at"]) > now:
        return
    schedules[notification_id] = {**current, "status": "sent"}
    event = ev.NotificationScheduled.model_validate(current["event"])
    notice, target = notice_for(event)
    # The notice's time is the send time, not now: a replayed fire builds the same requests.
    await dispatch(dataclasses.replace(notice, created_at=event.send_at), target)


register_timer_op("schedule", fire_schedule)


@app.timer(get_settings().notifications_tick_s)
async def find_due_schedules() -> None:
    if app.rebalancing:
        return
    now = CLOCK.now()
    for notification_id, current in schedules.items():
        if current and current["status"] == "pending" and datetime.fromisoformat(current["send_at"]) <= now:
            await tick("schedule", notification_id)
