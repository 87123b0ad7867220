"""Audience tables and resolution: who is in a team, which teams a tournament has.

Both tables are written only by this agent, from the notification-audiences topic, whose key is the team or
tournament id — so each key's membership lives on the worker that resolves notices for it:
  ``team-members``       team_id -> sorted member user ids (roster changes, accepted invites, registrations)
  ``tournament-teams``   tournament_id -> sorted registered team ids
A tournament's notice is resolved in two hops (tournament -> its teams -> their members), never by reading
another partition's table: one ``resolve_team`` record per audience partition, naming that partition's teams.
Members go on as one record per user partition (``to_users``). A notice whose audience resolves to nobody is
counted, not an error. Records written before the batching (one team per ``resolve_team``) are still read.
"""

from __future__ import annotations

import logging

import orjson

from crownstream.agents.decoding import process_internal
from crownstream.agents.notifications_common import AUDIENCES, audiences_topic, by_partition, to_audience, to_users
from crownstream.app import app
from crownstream.metrics import NOTIFICATION_NO_AUDIENCE
from crownstream.streams.topics import NOTIFICATION_AUDIENCES

log = logging.getLogger(__name__)
PARTITIONS = NOTIFICATION_AUDIENCES.partition_count()

team_members = app.Table("team-members", default=None, partitions=PARTITIONS, help="team -> member user ids")
tournament_teams = app.Table(
    "tournament-teams", default=None, partitions=PARTITIONS, help="tournament -> registered team ids"
)


async def members_op(team_id: str, add: list[str], remove: list[str]) -> None:
    """Queue a membership change of ``team_id`` (ordered before any notice sent after it for that team)."""
    await to_audience(team_id, {"op": "members", "team": team_id, "add": add, "remove": remove})


async def register_op(tournament_id: str, team_id: str) -> None:
    await to_audience(tournament_id, {"op": "register", "tournament": tournament_id, "team": team_id})


async def _members(record: dict) -> None:
    team_id = record["team"]
    members = set(team_members.get(team_id) or ())
    new = [u for u in record["add"] if u not in members]
    members.update(record["add"])
    members.difference_update(record["remove"])
    team_members[team_id] = sorted(members)
    # The user directory (all-users broadcasts) learns of people from their teams.
    await to_users(new, {"op": "known"})


async def _register(record: dict) -> None:
    teams = set(tournament_teams.get(record["tournament"]) or ())
    if record["team"] not in teams:
        tournament_teams[record["tournament"]] = sorted(teams | {record["team"]})


async def _resolve_team(record: dict) -> None:
    """One team (``team``, the records before batching) or several of one audience partition (``teams``)."""
    exclude = set(record.get("exclude") or ())
    members: dict[str, None] = {}
    for team_id in record["teams"] if "teams" in record else (record["team"],):
        members.update((u, None) for u in team_members.get(team_id) or () if u not in exclude)
    if not members and not exclude:
        NOTIFICATION_NO_AUDIENCE.labels(record["notice"]["type"]).inc()
    # A member of two of these teams is told once.
    await to_users(members, {"op": "notify", "notice": record["notice"]})


async def _resolve_tournament(record: dict) -> None:
    teams = tournament_teams.get(record["tournament"]) or ()
    if not teams:
        NOTIFICATION_NO_AUDIENCE.labels(record["notice"]["type"]).inc()
    for partition, part in sorted(by_partition(teams, AUDIENCES).items()):
        await to_audience(
            part[0], {"op": "resolve_team", "teams": part, "notice": record["notice"], "exclude": []}, partition
        )


OPS = {
    "members": _members,
    "register": _register,
    "resolve_team": _resolve_team,
    "resolve_tournament": _resolve_tournament,
}


async def apply_audience_record(record) -> None:
    # Written only by our own agents: a record we cannot read or apply is a bug; it goes to the dead-letter
    # topic (process_internal) so that it neither stops every notification behind it nor vanishes.
    data = orjson.loads(record.value)
    await OPS[data["op"]](data)


@app.agent(audiences_topic, name="notification-audiences")
async def resolve_audiences(stream) -> None:
    await process_internal(stream, "notification-audiences", apply_audience_record)
