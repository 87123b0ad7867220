"""Faust's table manager with the engine's recovery (``recovery.RestoringRecovery``, UPSTREAM.md F11/F12), a
changelog queue that keeps standby records through the post-recovery clear (F13), and changelog offsets
persisted on commit under exactly_once (F14). ``install`` makes it the app's ``TableManager`` when
``CROWNSTREAM_TABLE_RESTORE=consumer`` (UPSTREAM.md W).
"""

from __future__ import annotations

from typing import Any, cast

from faust.tables.manager import TableManager
from mode.utils.queues import ThrowableQueue

from crownstream.engine.recovery import RestoringRecovery
from crownstream.engine.state_repair import partition_of, repair_for


class ChangelogQueue(ThrowableQueue[Any]):  # of changelog events, as Faust's
    """Faust's changelog queue, which can keep its events through a flow-control clear (see the module doc)."""

    keep_through_clear = False

    def clear(self) -> None:
        if not self.keep_through_clear:
            super().clear()


class RestoringTableManager(TableManager):
    """Faust's table manager with RestoringRecovery and ChangelogQueue, persisting the changelog offsets of
    committed table writes."""

    def on_commit(self, offsets: Any) -> None:
        """Under exactly_once Faust holds back a table write's changelog offset until the commit and then looks
        it up by the committed *source* partitions — which never name a changelog partition, so no offset of a
        table written by processing was ever persisted, and every restart replayed its whole changelog. A
        changelog partition is written only by events of the same partition number (Faust sends the change to
        the event's partition), whose transactions this commit has just committed — except a partition whose
        transaction was aborted instead (crownstream/engine/state_repair.py), whose local state is about to be wiped."""
        committed = {tp.partition for tp in offsets}
        committed -= {partition_of(tid) for tid in repair_for(self.app).corrupt}
        pending = self._pending_persisted_offsets
        for tp, (store, offset) in list(pending.items()):
            if tp.partition in committed:
                store.set_persisted_offset(tp, offset)
                del pending[tp]

    @property
    def changelog_queue(self) -> ChangelogQueue:
        if self._changelog_queue is None:
            self._changelog_queue = ChangelogQueue(
                maxsize=self.app.conf.stream_buffer_maxsize,
                flow_control=self.app.flow_control,
                clear_on_resume=True,
            )
        return cast(ChangelogQueue, self._changelog_queue)  # only this property sets it

    @property
    def recovery(self) -> RestoringRecovery:
        if self._recovery is None:
            self._recovery = RestoringRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return cast(RestoringRecovery, self._recovery)  # only this property sets it
