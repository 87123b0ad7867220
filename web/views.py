"""HTTP views served by every worker: health, metrics, and (in later modules) standings queries."""

from __future__ import annotations

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from crownstream.agents.tournament_events import tournament_activity
from crownstream.app import app
from crownstream.engine import gate_for
from crownstream.runtime_metrics import refresh as refresh_runtime_metrics
from crownstream.settings import get_settings
from crownstream.web.auth import PUBLIC, STAFF, access
from crownstream.web.errors import HttpError
from crownstream.web.responses import routed


@app.page("/metrics")
class Metrics(View):
    """Prometheus metrics (counters and gauges only: no user data). Public, so that a scraper needs no token;
    keep the port off the internet if the tournament names in labels should not be."""

    @access(PUBLIC)
    async def get(self, request: Request) -> Response:
        await refresh_runtime_metrics(app)
        return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


@app.timer(interval=get_settings().metrics_refresh_s)
async def _refresh_runtime_metrics() -> None:
    # Between scrapes too, so that lag and table sizes are current for anything reading the registry.
    await refresh_runtime_metrics(app)


@app.page("/healthz")
class Liveness(View):
    @access(PUBLIC)
    async def get(self, request: Request) -> Response:
        return self.json({"status": "alive"})


class _Assignment:
    """The consumer generation whose assignment this worker has received (None: none since the last revoke)."""

    generation: int | None = None


_assignment = _Assignment()


@app.on_partitions_revoked.connect
async def _forget_assignment(sender, revoked, **kwargs) -> None:
    # Every rebalance starts with a revoke (aiokafka's eager protocol): until the new assignment arrives the
    # worker does not know what it owns.
    _assignment.generation = None


@app.on_partitions_assigned.connect
async def _note_assignment(sender, assigned, **kwargs) -> None:
    _assignment.generation = sender.consumer_generation_id


def assigned_in_current_generation(received: int | None, current: int) -> bool:
    """ "Assigned" = this worker received its assignment in the group's current generation — whatever it holds:
    actives, only standbys, or nothing (more workers than partitions; the sticky assignor may leave one empty).
    A worker with no active partition still serves every query by forwarding it to the owner."""
    return received is not None and received == current and current >= 0


@app.page("/readyz")
class Readiness(View):
    """Ready = the group is not rebalancing, this worker has its assignment of the current generation, and its
    tables are recovered.

    Faust sets ``recovery.completed`` after the first recovery and never clears it, so after a later
    rebalance it alone would report "recovered" while the moved partitions are still being replayed from
    their changelogs: ``in_recovery`` covers that window."""

    @access(PUBLIC)
    async def get(self, request: Request) -> Response:
        recovery = app.tables.recovery
        checks = {
            "rebalancing": bool(app.rebalancing),
            "assigned": assigned_in_current_generation(_assignment.generation, app.consumer_generation_id),
            "recovered": recovery.completed.is_set() and not recovery.in_recovery,
            "actives": len([tp for tp in app.assignor.assigned_actives() if not tp.topic.endswith("-changelog")]),
        }
        ready = not checks["rebalancing"] and checks["assigned"] and checks["recovered"]
        return self.json({"ready": ready, **checks}, status=200 if ready else 503)


@app.page("/tournaments/{tournament_id}/activity")
class TournamentActivity(View):
    @access(PUBLIC)
    @routed(tournament_activity, "tournament_id")
    async def get(self, request: Request, tournament_id: str) -> Response:
        activity = tournament_activity.get(tournament_id)
        if activity is None:
            raise HttpError(404, f"no events seen for tournament {tournament_id!r}")
        return self.json({"tournament_id": tournament_id, **activity})


@app.page("/ops/assignment")
class Assignment(View):
    """Which partitions this worker processes (actives) and replicates (standbys), and how far behind it is."""

    @access(STAFF)
    async def get(self, request: Request) -> Response:
        consumer = app.consumer
        actives = sorted(app.assignor.assigned_actives())
        lag = {}
        for tp in actives:
            if tp.topic.endswith("-changelog"):
                continue
            try:
                position = await consumer.position(tp)
            except Exception:  # not assigned in the underlying consumer yet
                position = None
            highwater = consumer.highwater(tp)
            lag[f"{tp.topic}[{tp.partition}]"] = {
                "position": position,
                "highwater": highwater,
                "lag": (highwater - position) if position is not None and highwater is not None else None,
            }
        return self.json(
            {
                "worker": str(app.conf.canonical_url),
                "actives": [f"{tp.topic}[{tp.partition}]" for tp in actives],
                "standbys": [f"{tp.topic}[{tp.partition}]" for tp in sorted(app.assignor.assigned_standbys())],
                "paused": [f"{tp.topic}[{tp.partition}]" for tp in sorted(consumer._paused_partitions)],
                "sources": lag,
                "transaction_groups": dict(app.assignor._topic_groups),
                "commit_gates": gate_for(app).snapshot(),
                # Faust's flow control: both stay false from a rebalance's start until its recovery completes.
                "flow": {"consumer": consumer.flow_active, "app": app.flow_control.is_active()},
            }
        )


@app.page("/ops/routes")
class Routes(View):
    """Every route this worker's web server serves (method and path), read from the live aiohttp router: what
    the OpenAPI document must cover (tests compare the two)."""

    @access(STAFF)
    async def get(self, request: Request) -> Response:
        routes = sorted(
            {
                (route.method, route.resource.canonical)
                for route in request.app.router.routes()
                if route.resource is not None
            }
        )
        return self.json({"routes": [{"method": m, "path": p} for m, p in routes]})
