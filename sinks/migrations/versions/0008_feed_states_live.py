"""In-app feed: seen and archived states, and the triggers behind its live push.

- ``seen_at`` (the user saw the item in the list or the bell: clears the badge's "new" count) and ``archived_at``
  (hidden from the default list; un-archivable). Items already read count as seen.
- The unread and unseen counts leave archived items out, so their partial indexes do too.
- ``feed_items_order`` (BEFORE INSERT): takes a transaction lock on the item's user, then numbers the row. Ids come
  from a sequence, and two transactions writing to one user could otherwise commit out of id order (101 visible
  before 100): a live stream that moved its cursor to 101 would never send 100. With the lock taken before the
  number, a user's items become visible in id order, whichever worker writes them, so "everything after id N" is a
  complete answer. Writers of several users' items take the locks in user order (sinks/feed.py) so two batches
  cannot deadlock.
- ``feed_items_announce`` (AFTER INSERT or a change of state): ``pg_notify('crownstream_feed', user_id)``. Sent at
  commit, so only committed items are announced, by whichever worker or tool wrote them; the workers' listeners
  (sinks/feed_live.py) wake that user's open streams, which read what is new themselves.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CHANNEL = "crownstream_feed"  # sinks/feed_live.py CHANNEL


def upgrade() -> None:
    op.add_column("feed_items", sa.Column("seen_at", sa.DateTime(timezone=True)))
    op.add_column("feed_items", sa.Column("archived_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE feed_items SET seen_at = read_at WHERE read_at IS NOT NULL")
    op.drop_index("feed_items_unread", table_name="feed_items")
    op.create_index(
        "feed_items_unread",
        "feed_items",
        ["user_id"],
        postgresql_where=sa.text("read_at IS NULL AND archived_at IS NULL"),
    )
    op.create_index(
        "feed_items_unseen",
        "feed_items",
        ["user_id"],
        postgresql_where=sa.text("seen_at IS NULL AND archived_at IS NULL"),
    )
    op.execute(
        """
        CREATE FUNCTION feed_items_order() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtextextended('crownstream_feed:' || NEW.user_id, 0));
            NEW.id := nextval(pg_get_serial_sequence('feed_items', 'id'));
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER feed_items_order BEFORE INSERT ON feed_items FOR EACH ROW EXECUTE FUNCTION feed_items_order()"
    )
    op.execute(
        f"""
        CREATE FUNCTION feed_items_announce() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- PostgreSQL folds identical notifications of one transaction into one.
            PERFORM pg_notify('{CHANNEL}', NEW.user_id);
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER feed_items_announce_insert AFTER INSERT ON feed_items "
        "FOR EACH ROW EXECUTE FUNCTION feed_items_announce()"
    )
    op.execute(
        "CREATE TRIGGER feed_items_announce_state AFTER UPDATE OF seen_at, read_at, archived_at ON feed_items "
        "FOR EACH ROW WHEN (OLD.seen_at IS DISTINCT FROM NEW.seen_at OR OLD.read_at IS DISTINCT FROM NEW.read_at "
        "OR OLD.archived_at IS DISTINCT FROM NEW.archived_at) EXECUTE FUNCTION feed_items_announce()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER feed_items_announce_state ON feed_items")
    op.execute("DROP TRIGGER feed_items_announce_insert ON feed_items")
    op.execute("DROP TRIGGER feed_items_order ON feed_items")
    op.execute("DROP FUNCTION feed_items_announce()")
    op.execute("DROP FUNCTION feed_items_order()")
    op.drop_index("feed_items_unseen", table_name="feed_items")
    op.drop_index("feed_items_unread", table_name="feed_items")
    op.create_index("feed_items_unread", "feed_items", ["user_id"], postgresql_where=sa.text("read_at IS NULL"))
    op.drop_column("feed_items", "archived_at")
    op.drop_column("feed_items", "seen_at")
