"""A user's notification preferences: the validated model carried by ``preferences.updated``.

Missing preferences (no event ever) and missing fields mean the defaults: every type on its catalog
channels, no opt-outs, no digest, no quiet hours, times in UTC.

Every string is refused if it holds NUL or another control character: the contact fields end up in
PostgreSQL (which rejects NUL in text, so a delivery carrying one would be retried forever) and in email
headers and HTTP requests.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator

from crownstream.notifications.catalog import CATALOG
from crownstream.notifications.errors import InvalidPreferences as InvalidPreferences
from crownstream.schemas.common import Model, Text, control_character
from crownstream.schemas.deliveries import Channel, Contact


class QuietHours(Model):
    """Local wall-clock window (in the user's timezone) in which email and Discord wait; may wrap midnight."""

    start: dt.time
    end: dt.time

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours start and end must differ (an empty window is no window: omit it)")
        return self


class Digest(Model):
    enabled: bool = False
    time: dt.time = Field(dt.time(8, 0), description="Local time of the daily digest, in the user's timezone.")
    types: list[str] = Field(default_factory=list, description="Notification types folded into the digest.")


class ContactInfo(Model):
    email: Text | None = Field(None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    discord_webhook_url: Text | None = Field(None, max_length=2000, pattern=r"^https?://")
    display_name: Text | None = Field(None, max_length=200)
    locale: Text = Field("en", max_length=16)


class Preferences(Model):
    types: dict[str, list[Channel]] = Field(
        default_factory=dict, description="Per notification type, the channels it goes to ([] mutes it)."
    )
    opt_out_channels: list[Channel] = Field(default_factory=list, description="Channels never used (except critical).")
    unsubscribed_channels: list[Channel] = Field(
        default_factory=list,
        description="Hard unsubscribe (e.g. email, where law requires it): honoured even for critical types.",
    )
    digest: Digest = Field(default_factory=Digest)
    quiet_hours: QuietHours | None = None
    timezone: Text = Field(
        "UTC", max_length=64, description="IANA timezone of digest time and quiet hours, e.g. Europe/Berlin."
    )
    contact: ContactInfo = Field(default_factory=ContactInfo)
    unthrottled_types: list[str] = Field(
        default_factory=list,
        description="Throttled notification types the user wants every one of (the catalog's throttle is skipped).",
    )

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(CATALOG))
        if unknown:
            raise ValueError(f"unknown notification types {unknown}; known: {sorted(CATALOG)}")
        return {k: list(dict.fromkeys(v)) for k, v in value.items()}

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name the file system refuses
            raise ValueError(f"{value!r} is not an IANA timezone (e.g. Europe/Berlin, America/New_York, UTC)") from None
        return value

    @field_validator("unthrottled_types")
    @classmethod
    def _known_unthrottled(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CATALOG))
        if unknown:
            raise ValueError(f"unknown notification types {unknown}; known: {sorted(CATALOG)}")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _digest_types_known(self) -> Preferences:
        unknown = sorted(set(self.digest.types) - set(CATALOG))
        if unknown:
            raise ValueError(f"digest.types has unknown notification types {unknown}")
        critical = sorted(t for t in self.digest.types if CATALOG[t].critical)
        if critical:
            raise ValueError(f"critical types {critical} are always sent at once and cannot be digested")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def contact_for_delivery(self) -> Contact:
        c = self.contact
        return Contact(
            email=c.email,
            discord_webhook_url=c.discord_webhook_url,
            display_name=c.display_name,
            locale=c.locale,
            timezone=self.timezone,
        )


DEFAULTS = Preferences()


def _find_control(data: Any) -> str | None:
    """The first string (or object key) anywhere in ``data`` holding a control character, as a message.
    Iterative: a deeply nested document must not exhaust the recursion limit."""
    todo: list[tuple[tuple[str, ...], Any]] = [((), data)]
    while todo:
        path, value = todo.pop()
        where = (".".join(path) or "(preferences)")[:200]
        if isinstance(value, str):
            found = control_character(value)
            if found is not None:
                # The position only: the value may be a credential (a Discord webhook URL).
                return (
                    f"{where}: contains the control character U+{ord(found[1]):04X} at index {found[0]}; "
                    "remove it (no control characters are allowed in preferences)"
                )
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                if control_character(str(key)) is not None:
                    return f"{where}: a field name contains a control character"
                todo.append(((*path, str(key)), item))
        elif isinstance(value, (list, tuple)):
            todo.extend(((*path, str(i)), item) for i, item in reversed(list(enumerate(value))))
    return None


def parse_preferences(data: Any) -> Preferences:
    """Dict -> Preferences, or ``InvalidPreferences`` naming each bad field and why. Raises nothing else."""
    if not isinstance(data, dict):
        raise InvalidPreferences(f"preferences are a JSON object, got {type(data).__name__}")
    problem = _find_control(data)
    if problem:
        raise InvalidPreferences(problem)
    try:
        return Preferences.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(preferences)'}: {e['msg']}" for e in exc.errors())
        raise InvalidPreferences(problems) from None
