"""The states of an in-app feed item and the changes a user can make to them (pure: no I/O).

An item is *seen* once the user saw it in the list or the bell (the badge counts unseen items as "new"), *read* once
opened (reading implies seen), and *archived* when put away: hidden from the default list, listed with a filter,
counted neither as unread nor as unseen, and un-archivable. Each change names its items by a ``Selection``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Change:
    column: str  # the feed_items timestamp the change sets or clears
    set: bool  # True: set it to now() where unset; False: clear it where set


#: action name (the route's last segment) -> what it does.
ACTIONS: dict[str, Change] = {
    "seen": Change("seen_at", True),
    "read": Change("read_at", True),
    "archive": Change("archived_at", True),
    "unarchive": Change("archived_at", False),
}


@dataclass(frozen=True, slots=True)
class Selection:
    """Which of a user's items a change applies to: the ``ids`` given, every one up to and including ``up_to``
    (the newest id the user was shown: "mark all seen"), or — both None — all of them."""

    ids: tuple[int, ...] | None = None
    up_to: int | None = None

    def __post_init__(self) -> None:
        if self.ids is not None and self.up_to is not None:
            raise ValueError("a selection names its items by ids or by up_to, not both")
