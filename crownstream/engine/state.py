"""The engine's state of one worker: one object per app, set by ``install`` and reached through ``state_of(app)``.

Kept beside the app (a weak mapping), not on it: nothing of the engine hangs on faust's App as an attribute.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crownstream.engine.errors import AlreadyInstalled, NotInstalled
from crownstream.engine.rebalance_pause import RebalancePause

if TYPE_CHECKING:
    from crownstream.engine.commit_gate import CommitGate
    from crownstream.engine.state_repair import StateRepair
    from crownstream.settings import Settings


@dataclass
class EngineState:
    #: The settings the app was created with.
    settings: Settings = field(repr=False)  # secrets (tokens, passwords) stay out of logs
    #: The commit gate shared by the agents (``gated_events``) and the transaction manager (UPSTREAM.md F3).
    commit_gate: CommitGate
    #: Which transactions hold sends and which partitions' local state is corrupt (UPSTREAM.md F15).
    state_repair: StateRepair
    #: How long the last rebalance stopped processing (``crownstream_rebalance_pause_seconds``).
    rebalance_pause: RebalancePause = field(default_factory=RebalancePause)


_STATES: weakref.WeakKeyDictionary[Any, EngineState] = weakref.WeakKeyDictionary()


def state_of(app: Any) -> EngineState:
    """The engine state of ``app``; ``NotInstalled`` if ``install`` was not called on it."""
    try:
        return _STATES[app]
    except KeyError:
        raise NotInstalled(f"the engine is not installed on {app!r}: call crownstream.engine.install") from None


def attach(app: Any, state: EngineState) -> None:
    if app in _STATES:
        raise AlreadyInstalled(f"the engine is already installed on {app!r}")
    _STATES[app] = state
