"""``python -m crownstream.demo`` (``make demo``): the whole pipeline on this machine, from one command.

Creates the topics of a fresh demo deployment (its own topic prefix and consumer group, so runs never mix),
starts two real ``crownstream worker`` processes, streams the demo tournament (crownstream/demo/tournament.py:
a 16-team battle-royale stage over several matches with a corrected result and a staff override, and a
best-of-3 round-robin group) while showing progress and the live standings the workers serve, then prints a
summary — checked against a recompute from the events — and the URL of the live leaderboard page.
Notifications go to loopback receivers (crownstream/demo/channels.py: SMTP, signed webhooks, a Discord stand-in,
the in-app feed in a database of the demo's own); the summary compares, per channel, the committed delivery
requests with what the receivers got.

Ctrl-C at any point stops the workers (SIGTERM, then SIGKILL if one hangs) and exits; nothing is left
running. Expects the broker and PostgreSQL to be up (``make demo`` starts them: deploy/with-services.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from crownstream.demo import hooks
from crownstream.demo.processes import WorkerGroup
from crownstream.demo.tournament import SWISS_STAGE, demo_tournament
from crownstream.ops import read_tournament_events, recompute_tournament
from crownstream.ops_series import compare_series, recompute_series_stages
from crownstream.settings import Settings, get_settings
from crownstream.streams.partitioning import partition_for
from crownstream.streams.topics import STANDINGS_EVENTS

BR_STAGE = "br-finals"
# Faust's worker ends a SIGTERM stop by re-raising the signal (-15); 0 if it stopped by itself.
GRACEFUL_EXIT = (0, -signal.SIGTERM)
GROUP_STAGE = "group-a"


@dataclass
class Summary:
    events: int = 0
    standings: list[dict[str, Any]] = field(default_factory=list)
    group: list[dict[str, Any]] = field(default_factory=list)
    swiss: list[dict[str, Any]] = field(default_factory=list)
    outputs: collections.Counter = field(default_factory=collections.Counter)
    payouts: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: int = 0
    deliveries: Any = None  # crownstream.demo.reconcile.Reconciliation when channels are on
    verified: bool = False
    problems: list[str] = field(default_factory=list)
    leaderboard_url: str = ""
    trace: str = ""  # crownstream trace of one match.completed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m crownstream.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tournament", default="demo-cup", help="tournament id (default: %(default)s)")
    parser.add_argument("--br-matches", type=int, default=6, help="battle-royale matches (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default: %(default)s)")
    parser.add_argument(
        "--partitions", type=int, default=4, help="partitions of the demo's topics (default: %(default)s)"
    )
    parser.add_argument(
        "--pace",
        type=float,
        default=0.2,
        help="seconds between events, so the standings can be watched change (default: %(default)s)",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".state/demo"), help="worker logs and table state")
    parser.add_argument(
        "--keep-serving",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after the summary, keep the workers (and the leaderboard page) up until Ctrl-C "
        "(default: when stdin is a terminal)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: when stderr is a terminal)",
    )
    parser.add_argument(
        "--channels",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="deliver notifications to loopback email/Discord/webhook receivers and the in-app feed, "
        "and check what they got (default: %(default)s)",
    )
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="keep the demo's ledger/feed database (default: dropped when the demo ends)",
    )
    return parser.parse_args(argv)


def demo_settings(base: Settings, args: argparse.Namespace, run: str) -> Settings:
    return base.model_copy(
        update={
            "app_id": f"crownstream-demo-{run}",
            "topic_prefix": f"demo-{run}.",
            "topic_partitions": args.partitions,
            "data_dir": str(args.state_dir / run / "workers"),
            "log_json": True,
        }
    )


def say(text: str = "") -> None:
    tqdm.write(text, file=sys.stdout)


# --- reading the workers' HTTP API ----------------------------------------------------------------------


class Api:
    """The workers' HTTP API. Any worker answers any query (it forwards to the owner); if one has died, the
    next one is asked."""

    def __init__(self, group: WorkerGroup) -> None:
        self.processes = group
        self.client = httpx.Client(timeout=10)

    def get(self, path: str, **params: Any) -> dict[str, Any] | None:
        for worker in self.processes.workers:
            if not worker.alive():
                continue
            try:
                r = self.client.get(f"{worker.url}{path}", params=params)
            except httpx.HTTPError:
                continue
            if r.status_code == 200:
                return r.json()
            if r.status_code != 503:
                return None
        return None

    def applied(self, tournament_id: str) -> int:
        activity = self.get(f"/tournaments/{tournament_id}/activity")
        return sum(activity["counts"].values()) if activity else 0

    def standings(self, tournament_id: str) -> list[dict[str, Any]]:
        body = self.get(f"/tournaments/{tournament_id}/standings", stage=BR_STAGE, limit=100)
        return body["standings"] if body else []

    def group(self, tournament_id: str, stage_id: str = GROUP_STAGE) -> list[dict[str, Any]]:
        body = self.get(f"/tournaments/{tournament_id}/groups/{stage_id}")
        return body["standings"] if body else []

    def wait_applied(self, tournament_id: str, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.applied(tournament_id) >= count:
                return True
            time.sleep(0.2)
        return False


def standings_lines(rows: list[dict[str, Any]], before: dict[str, int], top: int) -> list[str]:
    lines = []
    for row in rows[:top]:
        was = before.get(row["team_id"])
        move = (
            ""
            if was is None or was == row["rank"]
            else (f"▲{was - row['rank']}" if was > row["rank"] else f"▼{row['rank'] - was}")
        )
        lines.append(
            f"   {row['rank']:>2}. {row['team_name']:<16} {row['total_points']:>4} pts {row['kills']:>3} kills  {move}"
        )
    return lines


# --- streaming -------------------------------------------------------------------------------------------


def describe(event: dict[str, Any], seen: set[str]) -> str | None:
    """A headline for the events after which the live standings are shown; None for the others."""
    if event["type"] == "match.completed" and event.get("stage_id") == BR_STAGE:
        revision = event["revision"]
        if event["event_id"] in seen:
            return f"{event['match_id']} revision {revision} sent again by a retrying producer (must change nothing)"
        return (
            f"{event['match_id']} result"
            if revision == 1
            else f"{event['match_id']} corrected by the referee (revision {revision})"
        )
    if event["type"] == "result.overridden":
        return f"staff override on {event['match_id']} by {event['actor']}: {event['reason']}"
    return None


async def stream(
    settings: Settings,
    api: Api,
    events: list[dict[str, Any]],
    channels: hooks.Channels,
    pace: float,
    progress: bool | None,
) -> None:
    from crownstream.streams.producer import EventProducer

    tournament_id = events[0]["tournament_id"]
    ranks: dict[str, int] = {}
    sent = 0  # events of the tournament sent so far: the workers' activity count to wait for
    seen: set[str] = set()
    async with EventProducer(settings) as producer:
        bar = tqdm(
            events,
            desc="streaming",
            unit="event",
            disable=progress is False if progress is not None else not sys.stderr.isatty(),
            file=sys.stderr,
            dynamic_ncols=True,
        )
        for event in bar:
            await producer.send(event)
            await producer.flush()
            sent += event.get("tournament_id") == tournament_id
            headline = describe(event, seen)
            seen.add(event["event_id"])
            # A retried duplicate (same event_id) is applied once but counted in the activity like any event.
            if headline and await asyncio.to_thread(api.wait_applied, tournament_id, sent, 30):
                rows = await asyncio.to_thread(api.standings, tournament_id)
                say(f"\n▶ {headline}")
                for line in standings_lines(rows, ranks, 5):
                    say(line)
                ranks = {row["team_id"]: row["rank"] for row in rows}
                delivered = channels.counts()
                if delivered:
                    say("   delivered so far: " + ", ".join(f"{k} {v}" for k, v in sorted(delivered.items())))
            deliveries = channels.counts()
            bar.set_postfix_str(", ".join(f"{k} {v}" for k, v in sorted(deliveries.items())) or event["type"])
            if pace:
                await asyncio.sleep(pace)
        bar.close()


async def read_outputs(settings: Settings, tournament_id: str) -> list[dict[str, Any]]:
    """The committed outputs of the tournament on the standings-events topic (what downstream sees)."""
    topic = STANDINGS_EVENTS.full_name(settings)
    tp = TopicPartition(topic, partition_for(tournament_id, STANDINGS_EVENTS.partition_count(settings)))
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out: list[dict[str, Any]] = []
        while await consumer.position(tp) < end:
            for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, ()):
                value = orjson.loads(record.value)
                if value.get("tournament_id") == tournament_id:
                    out.append(value)
        return out
    finally:
        await consumer.stop()


async def run_demo(
    settings: Settings, group: WorkerGroup, channels: hooks.Channels, args: argparse.Namespace
) -> Summary:
    from crownstream.streams.dlq_ops import read_dead_letters
    from crownstream.streams.producer import EventProducer

    api = Api(group)
    prepared = channels.prepare(settings)
    if prepared:
        async with EventProducer(settings) as producer:
            for event in prepared:
                await producer.send(event)
            await producer.flush()
        if await asyncio.to_thread(channels.wait_prepared, [w.url for w in group.workers], 60):
            say(f"preferences of {len(prepared)} players applied")
        else:
            say("warning: not every player's preferences were applied within 60 s; early notices use the defaults")
    events = prepared + demo_tournament(args.tournament, br_matches=args.br_matches, swiss=True)
    tournament_events = [e for e in events if e.get("tournament_id") == args.tournament]
    say(
        f"streaming {len(tournament_events)} events of tournament {args.tournament!r}: a {BR_STAGE} stage of "
        f"16 teams over {args.br_matches} matches (one corrected, one staff override, one retried duplicate) "
        f", a best-of-3 group and an 8-team Swiss stage whose rounds the pipeline pairs"
    )
    await stream(settings, api, events[len(prepared) :], channels, args.pace, args.progress)

    summary = Summary(events=len(events))
    if not await asyncio.to_thread(api.wait_applied, args.tournament, len(tournament_events), 120):
        summary.problems.append(
            f"the workers applied {api.applied(args.tournament)} of {len(tournament_events)} events within 120 s"
        )
    summary.standings = await asyncio.to_thread(api.standings, args.tournament)
    summary.group = await asyncio.to_thread(api.group, args.tournament)
    summary.swiss = await asyncio.to_thread(api.group, args.tournament, SWISS_STAGE)
    # The Swiss stage from scratch, with the rounds the pipeline announced into the topic.
    swiss_expected = recompute_series_stages(await read_tournament_events(args.tournament, settings), args.tournament)
    swiss_problems = (
        compare_series(swiss_expected[SWISS_STAGE], summary.swiss)
        if SWISS_STAGE in swiss_expected
        else ["no Swiss stage in the topic"]
    )
    summary.problems += [f"Swiss stage: {p}" for p in swiss_problems]
    expected = recompute_tournament(tournament_events, args.tournament)[BR_STAGE].standings
    got = [(r["team_id"], r["total_points"]) for r in summary.standings]
    summary.verified = got == [(s.team_id, s.total_points) for s in expected]
    if not summary.verified:
        summary.problems.append("the standings served differ from a recompute from the events")
    outputs: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the final transaction commits a moment after the last event applies
        outputs = await read_outputs(settings, args.tournament)
        if any(o["type"] == "standings.finalized" for o in outputs):
            break
        await asyncio.sleep(1)
    summary.outputs = collections.Counter(o["type"] for o in outputs)
    summary.payouts = sorted((o for o in outputs if o["type"] == "payout.distributed"), key=lambda o: o["placement"])
    duplicates = [i for i, n in collections.Counter(o["event_id"] for o in outputs).items() if n > 1]
    if duplicates:
        summary.problems.append(f"{len(duplicates)} outputs were committed more than once")
    summary.dead_letters = len(await read_dead_letters(settings=settings))
    shown = [0.0]

    def delivering(result) -> None:
        if time.monotonic() - shown[0] >= 5 and not result.matches:
            shown[0] = time.monotonic()
            say(
                "delivering (received/requested): "
                + ", ".join(f"{c.channel} {c.received}/{c.requested}" for c in result.checks)
            )

    summary.deliveries = await channels.reconcile(settings, timeout=180, on_progress=delivering)
    if summary.deliveries is not None and not summary.deliveries.matches:
        summary.problems.append("what the receivers got differs from the committed delivery requests (see above)")
    summary.trace = await trace_of_one_result(settings, tournament_events, getattr(channels, "database_url", None))
    crashed = [w for w in group.workers if not w.alive()]
    for worker in crashed:
        summary.problems.append(
            f"worker {worker.url} died during the run (exit {worker.process.returncode}); see {worker.log_path}"
        )
    serving = next((w for w in group.workers if w.alive()), group.workers[0])
    summary.leaderboard_url = f"{serving.url}/tournaments/{args.tournament}/leaderboard?stage={BR_STAGE}"
    return summary


async def trace_of_one_result(settings: Settings, events: list[dict[str, Any]], database_url: str | None) -> str:
    """What ``crownstream trace`` says of the last battle-royale result, for two players: one on every channel,
    one whose match-result emails go to a daily digest."""
    from crownstream.demo.channels import DIGEST_USER, WEBHOOK_USERS
    from crownstream.trace_report import render, trace_event

    results = [e for e in events if e["type"] == "match.completed" and e.get("stage_id") == BR_STAGE]
    if not results:
        return ""
    event_id = results[-1]["event_id"]
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    report = await trace_event(event_id, since_s=3600, settings=settings)
    shown = [
        f"$ crownstream trace {event_id} --user {user}\n{render(report.for_user(user))}"
        for user in (WEBHOOK_USERS[1], DIGEST_USER)
    ]
    summary = render(report).splitlines()[-1].strip()
    return "\n".join([*shown, f"(the whole trace: {summary})"])


def print_summary(summary: Summary, args: argparse.Namespace, group: WorkerGroup) -> None:
    say("\n" + "═" * 72)
    say(f"Summary of {args.tournament!r}: {summary.events} events streamed through {len(group.workers)} workers")
    say(f"\nBattle-royale finals, final standings ({len(summary.standings)} teams):")
    for line in standings_lines(summary.standings, {}, len(summary.standings)):
        say(line)
    for payout in summary.payouts:
        prize = payout["prize"]
        say(
            f"   prize for place {payout['placement']}: {payout['team_id']} "
            f"{prize['amount_minor'] / 100:,.2f} {prize['currency']}"
        )
    if summary.group:
        say("\nGroup A (best of 3, round robin):")
        for row in summary.group:
            say(
                f"   {row['rank']}. {row['team_name']:<10} {row['wins']}-{row['losses']} series, "
                f"games {row['game_wins']}-{row['game_losses']}, {row['points']} pts"
            )
    if summary.swiss:
        say("\nSwiss stage (two wins advance, two losses eliminate; rounds paired by the pipeline):")
        for row in summary.swiss:
            say(
                f"   {row['rank']}. {row['team_name']:<10} {row['record']}  difficulty {row['difficulty']:+d}  "
                f"{row['status']}"
            )
    say(
        "\nOutputs committed on standings-events: "
        + (", ".join(f"{n} {t}" for t, n in sorted(summary.outputs.items())) or "none")
    )
    say(f"Dead-lettered records: {summary.dead_letters}")
    if summary.deliveries is not None:
        say("")
        for line in summary.deliveries.lines():
            say(line)
    if summary.trace:
        say("\nOne match result followed end to end (crownstream trace):")
        say(summary.trace)
    say(f"Standings equal a recompute from the events: {'yes' if summary.verified else 'NO'}")
    for problem in summary.problems:
        say(f"PROBLEM: {problem}")
    say(f"\nLive leaderboard: {summary.leaderboard_url}")
    say(f"Worker logs: {group.workers[0].log_path.parent}")


def wait_for_ctrl_c(url: str) -> None:
    say(f"\nThe workers keep serving {url} — press Ctrl-C to stop them.")
    while True:
        time.sleep(3600)


def main(argv: list[str] | None = None) -> int:
    # A shell without job control starts background commands with SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler (nor does asyncio.run): the demo ignored Ctrl-C / kill -INT and ran on to its end
    # (seen in a run of the tests launched with `&`). The demo always answers SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = parse_args(argv)
    run = time.strftime("%Y%m%d-%H%M%S")
    settings = demo_settings(get_settings(), args, run)
    state = args.state_dir / run
    state.mkdir(parents=True, exist_ok=True)
    channels = hooks.channels(keep_database=args.keep_database, enabled=args.channels)
    group: WorkerGroup | None = None
    status = 1
    try:
        from crownstream.streams.admin import ensure_topics

        say(
            f"Crownstream demo {run}: broker {settings.kafka_bootstrap}, topics {settings.topic_prefix}*, "
            f"group {settings.app_id}"
        )
        reports = asyncio.run(ensure_topics(settings=settings))
        say(f"topics: {len(reports)} ready")
        extra_env = channels.start(settings)
        say(channels.describe())
        group = WorkerGroup(settings, args.workers, state, extra_env)
        group.start_all()
        say(f"starting {args.workers} workers: " + ", ".join(f"{w.url} (pid {w.pid})" for w in group.workers))
        started = time.monotonic()
        group.wait_ready(180)
        say(f"workers ready in {time.monotonic() - started:.1f}s")
        summary = asyncio.run(run_demo(settings, group, channels, args))
        print_summary(summary, args, group)
        status = 0 if summary.verified and not summary.problems else 1
        keep = args.keep_serving if args.keep_serving is not None else sys.stdin.isatty()
        if keep and status == 0:
            wait_for_ctrl_c(summary.leaderboard_url)
    except KeyboardInterrupt:
        say("\ninterrupted")
        status = 130 if status != 0 else 0
    except (RuntimeError, TimeoutError, OSError, SQLAlchemyError) as exc:
        say(f"demo failed: {exc}")
        status = 1
    finally:
        # A second Ctrl-C must not leave half-stopped workers behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if group is not None:
            say("stopping workers (SIGTERM: commit and leave the group) …")
            codes = group.stop_all()
            left = group.running()
            say(
                f"workers stopped (exit codes {codes}); "
                + ("nothing left running" if not left else f"STILL RUNNING: {left}")
            )
            for worker, code in zip(group.workers, codes, strict=True):
                if code not in GRACEFUL_EXIT:
                    say(f"warning: worker {worker.url} exited with {code}, not as a clean stop: see {worker.log_path}")
            if left:
                status = status or 1
        try:
            done = channels.stop()
        except Exception as exc:  # the workers are stopped; a cleanup failure must say what is left over
            say(f"warning: stopping the channels failed: {exc}")
            status = status or 1
        else:
            if done:
                say(done)
    return status


if __name__ == "__main__":
    sys.exit(main())
