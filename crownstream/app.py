"""The Faust application: one per worker process, configured entirely from ``crownstream.settings``.

Agents, tables and HTTP views register themselves on ``app`` when their modules are imported
(``crownstream.agents`` imports them all), so importing this module alone starts nothing.
"""

from __future__ import annotations

import os

import faust
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from crownstream import engine
from crownstream.logs import logging_config
from crownstream.settings import Settings, get_settings


def broker_urls(bootstrap: str) -> str:
    return ";".join(f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip())


class CrownstreamWeb(AiohttpWeb):
    """Faust's aiohttp web server serving only Crownstream's own views.

    Faust mounts views of its own: the table browser (``/table/…``: any key of any table, e.g. a user's email
    address and Discord webhook), ``/router/…`` (the cluster's topology), statistics and ``/graph`` — none
    authenticated. The ``web_*_enabled`` settings switch those off (create_app); the production index at
    ``/`` has no setting, hence no built-in blueprint at all here. Query routing does not need ``/router``:
    crownstream/web/routing.py reads the assignment in-process."""

    default_blueprints = ()
    production_blueprints = ()
    debug_blueprints = ()
    optional_blueprints = ()


class CrownstreamApp(faust.App):
    """Faust's App with a web server serving Crownstream's views only, behind its error, path-parameter and
    security-header middleware (crownstream/web/middleware.py). The engine (crownstream/engine/) is wired in by
    ``engine.install`` in create_app."""

    def _new_web(self) -> CrownstreamWeb:
        return CrownstreamWeb(self)

    def on_webserver_init(self, web) -> None:
        from crownstream.web.middleware import install  # the web package's leaf module; it imports no app

        install(web.web_app)


def create_app(settings: Settings | None = None) -> faust.App:
    settings = settings or get_settings()
    # Each worker keeps its RocksDB tables in a folder of its own; two workers on one host must not share one.
    datadir = os.path.join(settings.data_dir, f"{settings.app_id}-{settings.web_port}")
    os.makedirs(datadir, exist_ok=True)
    app = CrownstreamApp(
        settings.app_id,
        broker=broker_urls(settings.kafka_bootstrap),
        # Faust's RocksDB store; with rocksdict installed (and python-rocksdb not) it runs on rocksdict.
        store="rocksdb://",
        processing_guarantee=settings.processing_guarantee,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        table_standby_replicas=settings.table_standby_replicas,
        # Faust's default (60 s) keeps a dead worker's tournaments unanswered for a minute.
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(settings.heartbeat_interval_s, settings.session_timeout_s / 3),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        canonical_url=settings.worker_url,
        datadir=datadir,
        autodiscover=False,
        origin="crownstream",
        consumer_auto_offset_reset="earliest",
        # A worker that is down while events arrive must catch up on restart, not skip to the end.
        stream_wait_empty=True,
        web_cors_options=None,
        # Faust's own views off (see CrownstreamWeb): they serve table contents and topology unauthenticated.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        # aiohttp refuses larger bodies with 413 before a view reads them (views read through web/inputs.py).
        web_application_options={"client_max_size": settings.http_max_body_bytes},
        producer_linger_ms=settings.producer_linger_ms,
        broker_commit_interval=settings.commit_interval_s,
        logging_config=logging_config(settings.log_level, settings.log_json),
    )
    # The engine: its transports, its table manager (active tables restored by a consumer of their own when
    # CROWNSTREAM_TABLE_RESTORE=consumer), its state, and aiokafka's re-bootstrap (crownstream/engine/install.py).
    engine.install(app, settings)
    return app


app = create_app()
