"""Field types shared by every event model: ids, UTC timestamps, money, audiences."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

# Ids come from many platforms (UUIDs, snowflakes, slugs); we only insist they are short, printable and
# safe to use as Kafka keys, table keys and URL path segments.
Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


# A timezone-aware instant, normalised to UTC. Naive datetimes are rejected: a result stamped "19:00" with no
# zone cannot be ordered against results from other regions.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class Model(BaseModel):
    """Strict, immutable base: unknown fields are errors (a typo must not silently drop data)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Money(Model):
    """An amount in the currency's minor units (cents), so sums never suffer float rounding."""

    amount_minor: int = Field(ge=0, description="Amount in minor units, e.g. cents.")
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


Audience = Annotated[
    UsersAudience | TeamAudience | TournamentAudience | AllUsersAudience, Field(discriminator="kind")
]
