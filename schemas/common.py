"""Field types shared by every event model: ids, UTC timestamps, money, audiences."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, Strict, StringConstraints

# Ids come from many platforms (UUIDs, snowflakes, slugs); we only insist they are short, printable and
# safe to use as Kafka keys, table keys and URL path segments (the pattern admits no control character).
ID_MAX_LENGTH = 128
Id = Annotated[
    str, StringConstraints(min_length=1, max_length=ID_MAX_LENGTH, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
]

# --- free text ------------------------------------------------------------------------------------------
# NUL and the other C0/C1 control characters are refused at the edge: PostgreSQL rejects NUL in text (a
# delivery that carries one would be retried forever), and the rest corrupt logs, email headers and terminals.
# Multi-line text (reasons, bodies) may hold tab and line feed; one-line text (names, titles) neither.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def control_character(value: str, *, multiline: bool = False) -> tuple[int, str] | None:
    """The first forbidden control character of ``value`` and its index, or None."""
    found = (_CONTROL_MULTILINE if multiline else _CONTROL).search(value)
    return (found.start(), found.group()) if found else None


def _refuse_control(multiline: bool) -> Callable[[str], str]:
    def check(value: str) -> str:
        found = control_character(value, multiline=multiline)
        if found is not None:
            index, char = found
            allowed = "; only tab and line feed are allowed in multi-line text" if multiline else ""
            # The position, not the value: the value may be a credential (a webhook URL) and reaches logs.
            raise ValueError(f"contains the control character U+{ord(char):04X} at index {index}{allowed}")
        return value

    return check


# One-line text (names, titles, actors) and multi-line text (reasons, bodies). Length limits stay per field.
# The JSON Schema documents the rule as a pattern; the validator gives the clearer message.
Text = Annotated[
    str,
    AfterValidator(_refuse_control(multiline=False)),
    Field(json_schema_extra={"pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}),
]
MultilineText = Annotated[
    str,
    AfterValidator(_refuse_control(multiline=True)),
    Field(json_schema_extra={"pattern": "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"}),
]

# --- bounded integers ------------------------------------------------------------------------------------
# Strict: JSON true is not 1, and a number too big for 64 bits (orjson reads it as a float) is not an integer.
# Bounds keep every total the engine derives far inside int64, which is what orjson can encode for an output:
# per match a team scores at most POINTS_MAX placement points + KILLS_MAX kills x POINTS_MAX per kill (~1e9),
# plus at most STARTING_POINTS_MAX carried in; int64 holds ~9.2e18, so a stage would need ~9e9 matches to
# overflow — billions of events, not one bad record.
POINTS_MAX = 1_000_000
KILLS_MAX = 1_000
STARTING_POINTS_MAX = 1_000_000_000
SEQUENCE_MAX = 1_000_000  # match sequence numbers and revisions: far beyond any real stage
MONEY_MAX = 10**15  # minor units: 10 trillion in a 2-decimal currency

StrictInt = Annotated[int, Strict()]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# A timezone-aware instant, normalised to UTC. Naive datetimes are rejected: a result stamped "19:00" with no
# zone cannot be ordered against results from other regions.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class Model(BaseModel):
    """Strict, immutable base: unknown fields are errors (a typo must not silently drop data)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Money(Model):
    """An amount in the currency's minor units (cents), so sums never suffer float rounding."""

    amount_minor: StrictInt = Field(ge=0, le=MONEY_MAX, description="Amount in minor units, e.g. cents.")
    currency: Currency = Field(description="ISO 4217 code, e.g. USD.")


class UsersAudience(Model):
    kind: Literal["users"] = "users"
    user_ids: list[Id] = Field(min_length=1, max_length=10_000)


class TeamAudience(Model):
    kind: Literal["team"] = "team"
    team_id: Id


class TournamentAudience(Model):
    kind: Literal["tournament"] = "tournament"
    tournament_id: Id


class AllUsersAudience(Model):
    kind: Literal["all_users"] = "all_users"


Audience = Annotated[UsersAudience | TeamAudience | TournamentAudience | AllUsersAudience, Field(discriminator="kind")]
