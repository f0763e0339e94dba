"""Inbox search: tickets by each word of the student's name, in inbox order.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 05:00:00

A single common word searched in names (a first name like "Moses": 26,377 of 2M tickets on the
benchmark data) matched too many tickets to collect, so the inbox was walked in order, each
ticket tested until twenty matched: about 2,000 tickets, 2.2 ms, and the walk planned anew for
each term. A btree index per place a word can hold among a name's distinct words, each ending
in the inbox's keyset, gives the same page as the first entries of a few lists (0.35 ms).

A name's words are read from its search vector (`tsvector_to_array` lists its distinct words
sorted), so the indexes follow every way a ticket is written, the demo-data generator included,
with no trigger of their own. The first NAME_WORD_PLACES places have an index each; tickets whose
names have more words are in one more index, in inbox order only, and are tested one by one.

Each index costs every ticket write that moves the ticket in the inbox (each message) one more
index entry per word of the name; docs/benchmarks.md (session 11) has the measurement.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in support/models.py, written out: a migration must not change when the models do.
_PLACES = 4
_COUNT = "cardinality(tsvector_to_array(name_vector))"


def _word(place: int) -> str:
    return f"(tsvector_to_array(name_vector))[{place}]"


_INDEXES = {
    **{
        f"ix_support_tickets_name_word_{place}": (
            f"({_word(place)}), last_activity_at DESC, id DESC",
            f"{_word(place)} IS NOT NULL",
        )
        for place in range(1, _PLACES + 1)
    },
    "ix_support_tickets_long_name_activity": (
        "last_activity_at DESC, id DESC",
        f"{_COUNT} > {_PLACES}",
    ),
}


def upgrade() -> None:
    # CONCURRENTLY: a plain CREATE INDEX would hold every ticket write (each student message
    # updates its ticket) while it builds, ~5 s per index on 2M tickets.
    bind = op.get_bind()
    with op.get_context().autocommit_block():
        # An interrupted run leaves its index behind, invalid: IF NOT EXISTS would keep it,
        # updated by every ticket write and never read. Build those again.
        invalid = bind.execute(
            sa.text(
                "SELECT indexrelid::regclass::text FROM pg_index "
                "WHERE indrelid = 'support_tickets'::regclass AND NOT indisvalid"
            )
        ).scalars()
        for name in [name for name in invalid if name in _INDEXES]:
            bind.execute(sa.text(f"DROP INDEX CONCURRENTLY IF EXISTS {name}"))
        for name, (columns, where) in _INDEXES.items():
            bind.execute(
                sa.text(
                    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} "
                    f"ON support_tickets ({columns}) WHERE {where}"
                )
            )
        # Statistics on the indexed expressions: the planner's estimates for a name word.
        bind.execute(sa.text("ANALYZE support_tickets"))


def downgrade() -> None:
    bind = op.get_bind()
    with op.get_context().autocommit_block():
        for name in _INDEXES:
            bind.execute(sa.text(f"DROP INDEX CONCURRENTLY IF EXISTS {name}"))
