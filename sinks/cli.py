"""``crownstream db|ledger|feed|email|deliveries|webhooks`` commands (added to the main CLI in crownstream/cli.py)."""

from __future__ import annotations

import asyncio
import sys

import click


def _run(coro_fn):
    async def main():
        from crownstream.sinks import db

        engine = db.create_engine()
        try:
            return await coro_fn(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


@click.group("db")
def db_group() -> None:
    """The PostgreSQL schema of the ledger, webhook endpoints and feed (Alembic migrations)."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations (idempotent; safe while workers run)."""
    from crownstream.sinks import db

    db.upgrade(revision=revision)
    click.echo(f"database at {revision}")


@click.group("ledger")
def ledger_group() -> None:
    """The delivery ledger."""


@ledger_group.command("prune")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Default: CROWNSTREAM_LEDGER_RETENTION_DAYS.")
def ledger_prune(days: int | None) -> None:
    """Delete delivered rows older than N days (pending, failed and dead rows are kept)."""
    from crownstream.settings import get_settings
    from crownstream.sinks.ledger import Ledger

    days = days or get_settings().ledger_retention_days
    count = _run(lambda engine: Ledger(engine).prune(days))
    click.echo(f"pruned {count} delivered rows older than {days} days")


@ledger_group.command("stats")
def ledger_stats() -> None:
    """Rows per state."""
    from crownstream.sinks.ledger import Ledger

    for state, count in sorted(_run(lambda engine: Ledger(engine).states()).items()):
        click.echo(f"{state}\t{count}")


@click.group("feed")
def feed_group() -> None:
    """The in-app feed."""


@feed_group.command("prune")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Default: CROWNSTREAM_FEED_RETENTION_DAYS.")
def feed_prune(days: int | None) -> None:
    """Delete items read or archived more than N days ago (unread items in the list are kept)."""
    from crownstream.settings import get_settings
    from crownstream.sinks.feed import prune_feed

    days = days or get_settings().feed_retention_days
    count = _run(lambda engine: prune_feed(engine, days))
    click.echo(f"pruned {count} feed items read or archived more than {days} days ago")


@click.group("email")
def email_group() -> None:
    """Email templates."""


@email_group.command("preview")
@click.argument("notification_type")
@click.option("--digest", is_flag=True, help="Render the digest template.")
@click.option("--part", type=click.Choice(["text", "html", "both"]), default="both", show_default=True)
def email_preview(notification_type: str, digest: bool, part: str) -> None:
    """Render NOTIFICATION_TYPE's email with sample data (e.g. match.result, payment.verified)."""
    from crownstream.settings import get_settings
    from crownstream.sinks.email import render_email, sample_request, template_names

    request = sample_request(notification_type, digest=digest)
    rendered = render_email(request, get_settings().public_url, get_settings().unsubscribe_key)
    click.echo(f"Template: email/{template_names(request.kind, notification_type)}.*   Subject: {rendered.subject}")
    if part in ("text", "both"):
        click.echo("----- text/plain -----")
        click.echo(rendered.text)
    if part in ("html", "both"):
        click.echo("----- text/html -----")
        click.echo(rendered.html)


@email_group.group("suppressions")
def email_suppressions() -> None:
    """Addresses a relay refused permanently (5xx to RCPT): no mail is sent to them."""


@email_suppressions.command("list")
def email_suppressions_list() -> None:
    """The suppressed addresses, newest first, with the relay's answer."""
    from crownstream.sinks.suppressions import suppressions

    for s in _run(suppressions):
        click.echo(f"{s.address}\t{s.suppressed_at:%Y-%m-%d %H:%M:%S}\tSMTP {s.code}\t{s.reason}")


@email_suppressions.command("lift")
@click.argument("address")
def email_suppressions_lift(address: str) -> None:
    """Mail ADDRESS again (the mailbox exists now); replay its dead deliveries if they should still go."""
    from crownstream.sinks.suppressions import lift

    if not _run(lambda engine: lift(engine, address)):
        click.echo(f"{address} is not suppressed", err=True)
        sys.exit(1)
    click.echo(f"lifted {address}")


@click.group("deliveries")
def deliveries_group() -> None:
    """The delivery dead-letter topic."""


@deliveries_group.command("replay")
@click.option("--channel", type=click.Choice(["in_app", "email", "discord", "webhook"]), default=None)
@click.option("--from-offset", default=0, show_default=True)
@click.option("--dry-run", is_flag=True)
def deliveries_replay(channel: str | None, from_offset: int, dry_run: bool) -> None:
    """Re-send dead-lettered deliveries (after fixing the endpoint): each gets a fresh attempt budget;
    ones already delivered stay delivered."""
    from crownstream.sinks.dead_letter import replay

    count = asyncio.run(replay(channel=channel, from_offset=from_offset, dry_run=dry_run))
    click.echo(f"{'would replay' if dry_run else 'replayed'} {count} delivery requests")


@click.group("webhooks")
def webhooks_group() -> None:
    """Outbound webhook endpoints."""


@webhooks_group.command("add")
@click.argument("user_id")
@click.argument("url")
@click.option("--type", "event_types", multiple=True, help="Notification types to send (default: all).")
@click.option(
    "--scheme",
    type=click.Choice(["v1", "v1a"]),
    default="v1",
    show_default=True,
    help="v1: HMAC-SHA256 (prints the whsec_ secret); v1a: Ed25519 (prints the whpk_ public key).",
)
@click.option("--rate-limit", type=click.FloatRange(min=0, min_open=True), help="At most this many a second.")
def webhooks_add(user_id: str, url: str, event_types: tuple[str, ...], scheme: str, rate_limit: float | None) -> None:
    """Register URL for USER_ID; prints the endpoint id and what its receiver verifies with: the whsec_ secret
    (shown once) or, with --scheme v1a, the whpk_ public key (the private key is never shown)."""
    from crownstream.settings import get_settings
    from crownstream.sinks.targets import TargetRefused
    from crownstream.sinks.webhook_endpoints import create_endpoint

    try:
        endpoint, secret = _run(
            lambda engine: create_endpoint(
                engine,
                user_id,
                url,
                event_types,
                allow_private=get_settings().sink_allow_private_targets,
                signature_scheme=scheme,
                rate_limit_per_second=rate_limit,
            )
        )
    except TargetRefused as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"{endpoint.id}\t{secret}")


@webhooks_group.command("enable")
@click.argument("endpoint_id")
def webhooks_enable(endpoint_id: str) -> None:
    """Re-enable a disabled endpoint (then `crownstream deliveries replay --channel webhook`)."""
    from crownstream.sinks.webhook_endpoints import set_enabled

    if not _run(lambda engine: set_enabled(engine, endpoint_id, True)):
        click.echo(f"no endpoint {endpoint_id}", err=True)
        sys.exit(1)
    click.echo(f"enabled {endpoint_id}")


@click.group("channels")
def channels_group() -> None:
    """Pause and resume whole delivery channels (their deliveries are held in the ledger meanwhile)."""


def _set_channel(channel: str, paused: bool, reason: str | None) -> None:
    import getpass

    from crownstream.sinks.errors import UnknownChannel
    from crownstream.sinks.switches import set_paused

    try:
        switch = _run(lambda engine: set_paused(engine, channel, paused, f"cli:{getpass.getuser()}", reason))
    except UnknownChannel as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    verb = "paused: its deliveries are held in the ledger" if switch.paused else "resumed: held deliveries go out"
    click.echo(f"{switch.channel} {verb} (every worker within CROWNSTREAM_SINK_POLL_INTERVAL_S)")


@channels_group.command("pause")
@click.argument("channel")
@click.option("--reason", default=None, help="Why (shown by `channels status`).")
def channels_pause(channel: str, reason: str | None) -> None:
    """Stop sending CHANNEL (in_app, email, discord, webhook); nothing is dropped."""
    _set_channel(channel, True, reason)


@channels_group.command("resume")
@click.argument("channel")
def channels_resume(channel: str) -> None:
    """Send CHANNEL again: what was held goes out, oldest first."""
    _set_channel(channel, False, None)


@channels_group.command("status")
def channels_status() -> None:
    """Each channel: running or paused (by whom, when, why), and how many deliveries wait in the ledger."""
    from crownstream.sinks.ledger import Ledger
    from crownstream.sinks.switches import switches

    async def read(engine):
        return await switches(engine), await Ledger(engine).backlog()

    found, backlog = _run(read)
    waiting: dict[str, int] = {}
    for channel, _, count, _ in backlog:
        waiting[channel] = waiting.get(channel, 0) + count
    for channel, switch in found.items():
        state = (
            f"paused by {switch.changed_by} at {switch.changed_at:%Y-%m-%d %H:%M:%S %Z}" if switch.paused else "running"
        )
        why = f" ({switch.reason})" if switch.paused and switch.reason else ""
        click.echo(f"{channel}	{state}{why}	{waiting.get(channel, 0)} waiting")


COMMANDS = (db_group, ledger_group, feed_group, email_group, deliveries_group, webhooks_group, channels_group)
