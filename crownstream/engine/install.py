"""The one place the engine is wired into a faust App: ``install(app, settings)``, called once by
``crownstream.app.create_app`` right after it builds the App (before anything touches its transport or tables).

What it does (UPSTREAM.md row W, and the rows each seam installs):

1. aiokafka's metadata update re-bootstraps a client that lost every broker (F16): the engine's one
   process-wide patch, applied on the first install and a no-op after;
2. the engine state (``EngineState``: the commit gate, F3, and the state repair, F15), reached by ``state_of``;
3. the transports (``topic_declarations.DeclareOnceTransport``, F17, over ``transport.CrownstreamTransport``),
   set through faust's public ``App.transport`` / ``App.producer_transport`` setters instead of overriding the
   App's private factories. Through them faust creates the engine's transaction manager (F1, F3, F4, F5),
   producer (its buffer replaced when it is built, F2, F15) and consumer (its consumer thread, F3, F6–F10, F12);
4. the rebalance pause's start, on the app's ``on_partitions_revoked`` signal (``rebalance_pause.py``; its end is
   the first batch processed in the new generation, ``batches.gated_batches``);
5. with ``CROWNSTREAM_TABLE_RESTORE=consumer``, the table manager (``table_manager.RestoringTableManager``,
   F11–F14) as the app's ``TableManager`` setting; with ``faust``, Faust's own.
"""

from __future__ import annotations

from typing import Any

from crownstream.engine import kafka_rebootstrap
from crownstream.engine.commit_gate import CommitGate
from crownstream.engine.state import EngineState, attach
from crownstream.engine.state_repair import StateRepair
from crownstream.engine.table_manager import RestoringTableManager
from crownstream.engine.topic_declarations import DeclareOnceTransport
from crownstream.engine.write_cache import CachedTable


def install(app: Any, settings: Any) -> EngineState:
    """Wire the engine into ``app`` (a faust App just built from ``settings``). Once per app: a second call
    raises ``AlreadyInstalled``. Returns the app's engine state."""
    kafka_rebootstrap.install()
    state = EngineState(
        settings=settings,
        commit_gate=CommitGate(),
        state_repair=StateRepair(app, fault_sends_left=settings.fault_abort_after_sends),
    )
    attach(app, state)

    async def _pause_starts(sender: Any, revoked: Any, **kwargs: Any) -> None:
        state.rebalance_pause.revoked(len(revoked), app.consumer_generation_id)

    app.on_partitions_revoked.connect(_pause_starts)

    app.transport = DeclareOnceTransport(app.conf.broker_consumer, app)
    app.producer_transport = DeclareOnceTransport(app.conf.broker_producer, app)
    # Tables are made by the agent modules, after this: each is a CachedTable (B2, the micro-batches' write cache).
    app.conf.Table = CachedTable
    if settings.table_restore == "consumer":
        app.conf.TableManager = RestoringTableManager
    return state
