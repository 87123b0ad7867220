"""The ``crownstream`` command: Faust's own CLI (``crownstream worker``, ``agents``, ``tables`` …) plus the
project's commands beside it (``topics``, ``produce``, ``dlq``, ``schemas``)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import orjson
from faust.cli.faust import cli as faust_cli

from crownstream.settings import InsecureSecrets, get_settings


@click.group("topics")
def topics() -> None:
    """Crownstream's Kafka topics."""


@topics.command("create")
def topics_create() -> None:
    """Create missing topics (CROWNSTREAM_TOPIC_REPLICATION, min.insync.replicas) and check the partition count
    and replication factor of existing ones (idempotent)."""
    from crownstream.streams.admin import ensure_topics

    reports = asyncio.run(ensure_topics())
    for report in reports:
        click.echo(report.line())
    if any(r.status in ("partition_mismatch", "under_replicated") for r in reports):
        sys.exit(1)


@topics.command("list")
def topics_list() -> None:
    """Print the topic registry: name, key, partitions, retention."""
    from crownstream.streams.topics import ALL_TOPICS

    for spec in ALL_TOPICS:
        policy = "compacted" if spec.compacted else f"retention {spec.retention_ms or 'broker default'} ms"
        click.echo(f"{spec.full_name()}\tkey={spec.key}\tpartitions={spec.partition_count()}\t{policy}")


@click.command("produce")
@click.argument("source", type=click.File("rb"))
@click.option("--validate-only", is_flag=True, help="Check every line; send nothing.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
def produce(source, validate_only: bool, progress: bool | None) -> None:
    """Produce JSON-lines events from SOURCE (a file, or - for stdin).

    Every line is validated first; invalid lines are listed by number and reason, are not sent, and make the
    command exit with status 1. Valid lines are sent whatever the others are, so a fixed file can be resent:
    the pipeline deduplicates by event_id.
    """
    from crownstream.streams.produce_file import produce_lines

    result = asyncio.run(produce_lines(source, send=not validate_only, progress=progress))
    for line_no, reason in result.rejected:
        click.echo(f"line {line_no}: {reason}", err=True)
    verb = "valid" if validate_only else "produced"
    click.echo(f"{result.accepted} {verb}, {len(result.rejected)} rejected, {result.blank} blank lines skipped")
    if result.rejected:
        sys.exit(1)


@click.group("dlq")
def dlq() -> None:
    """The dead-letter topic: list and replay records that were rejected."""


@dlq.command("list")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def dlq_list(limit: int, as_json: bool) -> None:
    """List dead-lettered records with their error and origin, oldest first."""
    from crownstream.streams.dlq_ops import read_dead_letters

    for letter in asyncio.run(read_dead_letters(limit=limit)):
        if as_json:
            click.echo(
                orjson.dumps({**dataclasses.asdict(letter), "key": _text(letter.key), "value": _text(letter.value)})
            )
        else:
            click.echo(
                f"#{letter.dlq_offset} [{letter.code}] {letter.source_topic}[{letter.source_partition}]@"
                f"{letter.source_offset}: {letter.reason}"
            )


@dlq.command("replay")
@click.option("--from-offset", default=0, show_default=True, help="First DLQ offset to replay.")
@click.option("--code", default=None, help="Only records with this error code.")
@click.option("--dry-run", is_flag=True)
def dlq_replay(from_offset: int, code: str | None, dry_run: bool) -> None:
    """Put dead-lettered records back on their source topic (after fixing the producer or the worker)."""
    from crownstream.streams.dlq_ops import replay_dead_letters

    count = asyncio.run(replay_dead_letters(from_offset=from_offset, code=code, dry_run=dry_run))
    click.echo(f"{'would replay' if dry_run else 'replayed'} {count} records")


@click.group("schemas")
def schemas() -> None:
    """The event contract."""


@schemas.command("export")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write one <type>.json per event type here (default: print one document).",
)
def schemas_export(out: Path | None) -> None:
    """Export the JSON Schema of every event type."""
    from crownstream.schemas.export import json_schemas

    docs = json_schemas()
    if out is None:
        click.echo(json.dumps(docs, indent=2, sort_keys=True))
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (out / f"{name}.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    click.echo(f"wrote {len(docs)} schemas to {out}")


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode(errors="replace")


for command in (topics, produce, dlq, schemas):
    faust_cli.add_command(command)

from crownstream.ops_cli import COMMANDS as _ops_commands  # noqa: E402  (standings rebuild, ops lag|assignment)

for command in _ops_commands:
    faust_cli.add_command(command)

from crownstream.sinks.cli import COMMANDS as _sink_commands  # noqa: E402  (added after the commands above)

for command in _sink_commands:
    faust_cli.add_command(command)

from crownstream.token_cli import token as _token_command  # noqa: E402  (token mint)
from crownstream.trace_cli import trace as _trace_command  # noqa: E402  (trace EVENT_ID)

faust_cli.add_command(_token_command)
faust_cli.add_command(_trace_command)


def worker_topics(app, settings) -> set[str]:
    """Every topic a worker reads or writes: the registry's, its tables' changelogs and faust's leader topic."""
    from crownstream.streams.topics import ALL_TOPICS

    names = {spec.full_name(settings) for spec in ALL_TOPICS}
    names |= {table.changelog_topic.get_topic_name() for table in app.tables.values()}
    names.add(f"{app.conf.id}-__assignor-__leader")  # faust/assignor/leader_assignor.py's name for it
    return names


def refuse_under_replicated(app, settings) -> None:
    """Exit, naming each topic and its factor, when a topic the worker uses exists replicated fewer times than
    CROWNSTREAM_TOPIC_REPLICATION: the worker would run on durability it was not configured for."""
    from crownstream.streams.admin import check_replication, replication_refusal
    from crownstream.streams.errors import BrokerUnavailable

    # In a thread of its own: asyncio.run here would leave the main thread without the event loop faust expects.
    with ThreadPoolExecutor(1) as pool:
        try:
            found = pool.submit(asyncio.run, check_replication(worker_topics(app, settings), settings)).result()
        except BrokerUnavailable as exc:
            # Not a refusal: the worker waits for the broker as before; its topics are checked at the next start.
            click.echo(f"crownstream worker: topics' replication not checked: {exc}", err=True)
            return
    if found:
        sys.exit(f"crownstream worker: {replication_refusal(found, settings.topic_replication)}")


def main() -> None:
    settings = get_settings()  # fail fast on a bad environment variable, before Faust starts anything
    worker = "worker" in sys.argv[1:]
    if worker:
        try:
            settings.check_secrets()
        except InsecureSecrets as exc:
            sys.exit(f"crownstream worker: {exc}")
        from crownstream.tracing import otel

        otel.configure(settings.otlp_endpoint, settings.otel_service_name, settings.worker_url)
    from crownstream.app import app
    from crownstream.web import all as _everything  # noqa: F401  (registers agents, tables, views)

    if worker:
        refuse_under_replicated(app, settings)
    app.main()


if __name__ == "__main__":
    main()
