"""Crownstream's stream-processing engine: its fixes to faust-streaming, aiokafka and mode (one module per
concern; UPSTREAM.md at the repository root has a row per fix, naming the module) and the one function that
installs them on an app.

This module is the engine's public face. Agents, views and sinks import from here, never from a module of the
package (tests/unit/test_engine_boundary.py checks it):

- ``install(app, settings)``: wire the engine into a faust App (``crownstream.app.create_app`` calls it once);
- ``state_of(app)`` / ``EngineState``: the engine state of a worker;
- ``gated_events(app, stream)``: an agent's events, each processed under the commit gate;
- ``gated_batches(app, stream, max_events)`` / ``Batch``: an agent's events as micro-batches of one input
  partition, each under one hold of the commit gate, with a write cache in front of the tables (``batches``,
  ``write_cache``); ``batch_active()``: whether the current task is processing one (its reads see the batch's
  writes; another task's reads see the stores, without them); ``after_batch(key, callback)``: a callback once the
  current batch's writes are in the stores (the live pages' wake-up);
- ``send_batch(app, topic, partition, records)``: the outputs of the event being processed, for one partition,
  as one record batch in the event's input-partition transaction (any other send of an agent, ``topic.send``,
  goes into that transaction too: the transaction manager routes it);
- ``gate_for(app)``: the worker's commit gate (``/ops/assignment`` shows its ``snapshot()``);
- ``EngineError``: the root of the errors the engine raises.

Module map (each module's docstring names its UPSTREAM.md rows):
``transactions`` (F1 F3 F4 F5), ``producer_buffer`` (F2), ``producer`` (F2 F15), ``commit_gate`` (F3),
``consumer`` (F3 F8 F12), ``consumer_thread`` (F6–F10), ``seek_epochs`` (F8), ``recovery`` (F11 F12),
``table_manager`` (F11 F13 F14), ``state_repair`` (F15), ``kafka_rebootstrap`` (F16), ``topic_declarations``
(F17), ``batches`` / ``write_cache`` (B1 B2), ``transport`` / ``install`` (W), ``state``, ``errors``.
"""

from typing import Any

from crownstream.engine.batches import Batch, after_batch, batch_active, gated_batches
from crownstream.engine.commit_gate import gate_for, gated_events
from crownstream.engine.errors import KAFKA_FAILURES, EngineError
from crownstream.engine.install import install
from crownstream.engine.state import EngineState, state_of


async def send_batch(
    app: Any,
    topic: str,
    partition: int,
    records: list[tuple[bytes | None, bytes]],
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """``records`` (key, value) to ``topic``'s ``partition`` as one batch, in the transaction of the input
    partition of the event being processed (``transactions.InputPartitionTransactionManager.send_batch``), each
    with ``headers``."""
    await app.consumer.transactions.send_batch(topic, partition, records, headers)


__all__ = [
    "KAFKA_FAILURES",
    "Batch",
    "EngineError",
    "EngineState",
    "after_batch",
    "batch_active",
    "gate_for",
    "gated_batches",
    "gated_events",
    "install",
    "send_batch",
    "state_of",
]
