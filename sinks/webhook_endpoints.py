"""Outbound webhook endpoints registered per subscriber (PostgreSQL ``webhook_endpoints``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from crownstream.sinks.rate_limit import check_rate, usable_rate
from crownstream.sinks.signing import SCHEMES, generate_key, receiver_key, scheme_of
from crownstream.sinks.tables import webhook_endpoints as t
from crownstream.sinks.targets import Resolve, check_url


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    user_id: str
    url: str
    # Signing keys (whsec_ secrets, whsk_ private keys): out of the repr, so no log line or traceback shows them.
    secrets: tuple[str, ...] = field(repr=False)
    event_types: tuple[str, ...]
    enabled: bool
    failing_since: datetime | None
    disabled_reason: str | None = None
    previous_secrets_until: datetime | None = None
    paused: bool = False
    rate_limit_per_second: float | None = None
    signature_scheme: str = "v1"

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The secrets that sign at ``now``: the newest always, the previous ones until their grace window ends."""
        if self.previous_secrets_until is not None and now >= self.previous_secrets_until:
            return self.secrets[:1]
        return self.secrets

    def wants(self, notification_type: str) -> bool:
        return not self.event_types or notification_type in self.event_types

    def public(self) -> dict[str, Any]:
        """Without the secrets."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "url": self.url,
            "event_types": list(self.event_types),
            "enabled": self.enabled,
            "failing_since": self.failing_since and self.failing_since.isoformat(),
            "disabled_reason": self.disabled_reason,
            "paused": self.paused,
            "rate_limit_per_second": self.rate_limit_per_second,
            "signature_scheme": self.signature_scheme,
            # Public keys are not secrets: the owner may fetch them again at any time (a v1 secret is shown once).
            "public_keys": [receiver_key(k) for k in self.signing_secrets(datetime.now(UTC)) if scheme_of(k) == "v1a"],
        }


def _endpoint(row) -> Endpoint:
    return Endpoint(
        row.id,
        row.user_id,
        row.url,
        tuple(row.secrets),
        tuple(row.event_types),
        row.enabled,
        row.failing_since,
        row.disabled_reason,
        row.previous_secrets_until,
        row.paused,
        row.rate_limit_per_second,
        row.signature_scheme,
    )


async def create_endpoint(
    engine: AsyncEngine,
    user_id: str,
    url: str,
    event_types: Sequence[str] = (),
    secret: str | None = None,
    allow_private: bool = False,
    max_url_length: int | None = None,
    resolve: Resolve | None = None,
    signature_scheme: str = "v1",
    rate_limit_per_second: float | None = None,
) -> tuple[Endpoint, str]:
    """Register an endpoint; returns it and what its receiver verifies with: the ``whsec_`` secret (v1, shown once
    to the subscriber) or the ``whpk_`` public key (v1a: the private key stays here and is never shown). The URL
    passes the whole outbound-target policy first, its name resolved (sinks/targets.py): TargetRefused says why
    not. ``secret``, if given, is the signing key (its prefix says its scheme)."""
    if max_url_length is None:
        from crownstream.settings import get_settings

        max_url_length = get_settings().sink_max_url_length
    if rate_limit_per_second is not None:
        check_rate(rate_limit_per_second)
    await check_url(url, allow_private, max_url_length, client="aiohttp", resolve=resolve)
    secret = secret or generate_key(signature_scheme)
    endpoint_id = uuid.uuid4().hex
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                t.insert()
                .values(
                    id=endpoint_id,
                    user_id=user_id,
                    url=url,
                    secrets=[secret],
                    signature_scheme=scheme_of(secret),
                    event_types=list(event_types),
                    rate_limit_per_second=rate_limit_per_second,
                )
                .returning(*t.c)
            )
        ).one()
    return _endpoint(row), receiver_key(secret)


async def get_endpoints(engine: AsyncEngine, ids: Sequence[str]) -> dict[str, Endpoint]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t).where(t.c.id.in_(list(ids))))).all()
    return {row.id: _endpoint(row) for row in rows}


async def endpoints_of(engine: AsyncEngine, user_ids: Sequence[str], enabled_only: bool = True) -> list[Endpoint]:
    query = select(t).where(t.c.user_id.in_(list(user_ids)))
    if enabled_only:
        query = query.where(t.c.enabled)
    async with engine.connect() as conn:
        return [_endpoint(row) for row in (await conn.execute(query.order_by(t.c.created_at))).all()]


async def rotate_secret(
    engine: AsyncEngine,
    endpoint_id: str,
    keep_old: bool = True,
    grace_s: float = 86_400.0,
    signature_scheme: str | None = None,
) -> tuple[str, datetime | None]:
    """Add a new signing key: it signs from now on, and the previous ones beside it for ``grace_s`` (the receiver
    switches meanwhile), then no more. Keys whose grace ended at an earlier rotation are dropped now. The new key is
    of ``signature_scheme`` (default: the endpoint's current one), so a rotation can also switch between v1 and v1a
    without a gap: the old key's signatures go on beside the new scheme's. Returns what the receiver verifies the new
    key with (a ``whsec_`` secret, or a ``whpk_`` public key for v1a) and when the previous keys stop signing (None
    without ``keep_old``: they stop at once)."""
    if signature_scheme is not None and signature_scheme not in SCHEMES:
        raise ValueError(f"unknown signature scheme {signature_scheme!r}; one of {list(SCHEMES)}")
    async with engine.begin() as conn:
        current = (
            await conn.execute(select(t.c.signature_scheme).where(t.c.id == endpoint_id).with_for_update())
        ).scalar_one_or_none()
        if current is None:
            raise KeyError(endpoint_id)
        secret = generate_key(signature_scheme or current)
        if keep_old:
            kept = text(
                "array_prepend(CAST(:s AS text), CASE WHEN previous_secrets_until IS NOT NULL "
                "AND previous_secrets_until <= now() THEN secrets[1:1] ELSE secrets END)"
            )
            until = text("now() + make_interval(secs => :grace)")
        else:
            kept, until = text("ARRAY[CAST(:s AS text)]"), None
        result = await conn.execute(
            update(t)
            .where(t.c.id == endpoint_id)
            .values(secrets=kept, previous_secrets_until=until, signature_scheme=scheme_of(secret))
            .returning(t.c.previous_secrets_until),
            {"s": secret, "grace": float(grace_s)},
        )
        row = result.one()
    return receiver_key(secret), row[0]


async def drop_old_secrets(engine: AsyncEngine, endpoint_id: str) -> None:
    """End the grace window now: only the newest secret signs."""
    async with engine.begin() as conn:
        await conn.execute(
            update(t).where(t.c.id == endpoint_id).values(secrets=text("secrets[1:1]"), previous_secrets_until=None)
        )


async def set_enabled(engine: AsyncEngine, endpoint_id: str, enabled: bool, reason: str | None = None) -> bool:
    values: dict[str, Any] = {"enabled": enabled, "disabled_reason": None if enabled else reason}
    values["disabled_at"] = None if enabled else text("now()")
    if enabled:
        values["failing_since"] = None
    async with engine.begin() as conn:
        return (await conn.execute(update(t).where(t.c.id == endpoint_id).values(**values))).rowcount == 1


async def mark_healthy(engine: AsyncEngine, endpoint_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(t).where(t.c.id == endpoint_id, t.c.failing_since.is_not(None)).values(failing_since=None)
        )


async def disable_gone(engine: AsyncEngine, endpoint_id: str, reason: str) -> datetime | None:
    """Disable an endpoint whose receiver said it is gone for good (410); returns when it started failing (now, if
    it was not failing) — only for the call that disabled it, None if it was disabled already (its owner is told
    once)."""
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                text("""
                UPDATE webhook_endpoints SET enabled = false, disabled_at = now(), disabled_reason = :reason,
                       failing_since = COALESCE(failing_since, now())
                 WHERE id = :id AND enabled
                RETURNING failing_since"""),
                {"id": endpoint_id, "reason": reason[:2000]},
            )
        ).first()
    return row[0] if row is not None else None


async def mark_failing(engine: AsyncEngine, endpoint_id: str, disable_after_s: float, reason: str) -> bool:
    """Note a failure; disable the endpoint if it has failed without a success for ``disable_after_s``.
    True exactly once: for the call that disabled it (so its owner is told once)."""
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE webhook_endpoints SET failing_since = now() WHERE id = :id AND failing_since IS NULL"),
            {"id": endpoint_id},
        )
        disabled = await conn.execute(
            text("""
            UPDATE webhook_endpoints SET enabled = false, disabled_at = now(), disabled_reason = :reason
             WHERE id = :id AND enabled AND failing_since <= now() - make_interval(secs => :after)
            RETURNING id"""),
            {"id": endpoint_id, "after": float(disable_after_s), "reason": reason[:2000]},
        )
        return disabled.first() is not None


async def count_disabled(engine: AsyncEngine) -> int:
    """Endpoints that no longer receive deliveries (disabled after failing, or by their owner)."""
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(t).where(~t.c.enabled))).scalar_one())


async def set_paused(engine: AsyncEngine, endpoint_id: str, paused: bool) -> bool:
    """Pause (deliveries held in the ledger) or resume (they go out, oldest first); False if there is no such
    endpoint."""
    async with engine.begin() as conn:
        return (await conn.execute(update(t).where(t.c.id == endpoint_id).values(paused=paused))).rowcount == 1


async def paused_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(t.c.id).where(t.c.paused))).scalars())


async def set_rate_limit(engine: AsyncEngine, endpoint_id: str, per_second: float | None) -> bool:
    """At most ``per_second`` deliveries a second to the endpoint (None: no limit); False if there is no such
    endpoint. Deliveries over the rate wait in the ledger; none fails or spends an attempt.

    Deliveries that were waiting for a slot under the old limit (pending, due later) are due now, to be paced anew:
    left alone, a backlog spread out at a low rate would keep its slow schedule after the owner raised or removed the
    limit. Retries waiting out their backoff ('failed') keep their time."""
    if per_second is not None:
        check_rate(per_second)
    async with engine.begin() as conn:
        result = await conn.execute(update(t).where(t.c.id == endpoint_id).values(rate_limit_per_second=per_second))
        if result.rowcount != 1:
            return False
        await conn.execute(
            text("""
            UPDATE deliveries SET next_attempt_at = now(), updated_at = now()
             WHERE channel = 'webhook' AND target = :id AND state = 'pending' AND next_attempt_at > now()"""),
            {"id": endpoint_id},
        )
        return True


async def endpoint_controls(engine: AsyncEngine) -> tuple[list[str], dict[str, float]]:
    """What the dispatcher obeys, in one query: the endpoints paused by their owner, and the rate limits set."""
    query = select(t.c.id, t.c.paused, t.c.rate_limit_per_second).where(
        t.c.paused | t.c.rate_limit_per_second.is_not(None)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    paused = [row.id for row in rows if row.paused]
    rates = {row.id: usable_rate(row.rate_limit_per_second) for row in rows if row.rate_limit_per_second is not None}
    return paused, rates
