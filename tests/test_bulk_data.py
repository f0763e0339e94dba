"""`counseldesk demo-data --students/--tickets/--messages`: exact counts, inbox columns that agree
with the generated messages, realistic shares, and a second run that adds on top."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from counseldesk.bulk_data import Counts, check_counts, generate
from counseldesk.db import migrate
from counseldesk.db.engine import create_engine
from counseldesk.demo import load_demo_data
from tests.conftest import make_settings, recreate_database

# Every denormalized column of a ticket, recomputed from its messages.
MISMATCHES = """
SELECT count(*) FILTER (WHERE t.message_count <> x.n),
       count(*) FILTER (WHERE t.last_student_message_id IS DISTINCT FROM x.last_student),
       count(*) FILTER (WHERE t.last_activity_at <> x.last_visible_at),
       count(*) FILTER (WHERE t.last_sender_type <> x.last_sender),
       count(*) FILTER (WHERE t.last_message_preview <> left(x.last_body, 140)),
       count(*) FILTER (WHERE t.telegram_user_id <> x.tg)
FROM support_tickets t
JOIN LATERAL (
    SELECT count(*) AS n,
           max(id) FILTER (WHERE sender_type = 'student') AS last_student,
           max(created_at) FILTER (WHERE NOT is_internal) AS last_visible_at,
           (array_agg(sender_type ORDER BY id DESC) FILTER (WHERE NOT is_internal))[1]
               AS last_sender,
           (array_agg(body ORDER BY id DESC) FILTER (WHERE NOT is_internal))[1] AS last_body,
           min(telegram_user_id) AS tg
    FROM support_messages m WHERE m.ticket_id = t.id
) x ON true
WHERE t.telegram_user_id >= 5000000000  -- generated ones (the demo's own are the service's)
"""


@pytest.fixture
async def bulk_engine(server_url: str) -> AsyncIterator[AsyncEngine]:
    url = await recreate_database(server_url, "counseldesk_bulk")
    migrate.upgrade(url)
    engine = create_engine(url, make_settings())
    async with async_sessionmaker(engine)() as session:
        await load_demo_data(session)
        await session.commit()
    yield engine
    await engine.dispose()


async def _scalar(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_generated_data_is_exact_consistent_and_realistic(bulk_engine: AsyncEngine) -> None:
    lines: list[str] = []
    students = await _scalar(bulk_engine, "SELECT count(*) FROM students")  # the demo's
    tickets = await _scalar(bulk_engine, "SELECT count(*) FROM support_tickets")
    messages = await _scalar(bulk_engine, "SELECT count(*) FROM support_messages")
    await generate(bulk_engine, Counts(students=400, tickets=3000, messages=24000), lines.append)

    assert lines[-1].endswith("done")
    assert await _scalar(bulk_engine, "SELECT count(*) FROM students") == students + 400
    assert await _scalar(bulk_engine, "SELECT count(*) FROM support_tickets") == tickets + 3000
    assert await _scalar(bulk_engine, "SELECT count(*) FROM support_messages") == messages + 24000
    async with bulk_engine.connect() as conn:
        mismatches = (await conn.execute(text(MISMATCHES))).one()
        shares = (
            await conn.execute(
                text(
                    """
                    SELECT avg((status = 'closed')::int), avg((status = 'open')::int),
                           avg((assigned_counselor_id IS NULL)::int),
                           avg((priority = 'urgent')::int),
                           count(DISTINCT category_id), max(message_count),
                           percentile_disc(0.5) WITHIN GROUP (ORDER BY message_count)
                    FROM support_tickets
                    """
                )
            )
        ).one()
        replies = (
            await conn.execute(
                text(
                    """
                    SELECT count(*) FILTER (WHERE m.notification_id IS NOT NULL),
                           count(n.id), count(*) FILTER (WHERE n.status = 'failed')
                    FROM support_messages m LEFT JOIN notifications n
                      ON n.id = m.notification_id
                    WHERE m.sender_type = 'counselor' AND NOT m.is_internal
                    """
                )
            )
        ).one()
    assert tuple(mismatches) == (0, 0, 0, 0, 0, 0)
    closed, open_, unassigned, urgent, categories, longest, median = shares
    assert closed > 0.6 and 0 < open_ < 0.2 and 0 < unassigned < 0.3 and 0 < urgent < 0.1
    assert categories >= 5
    assert longest > 3 * median  # skewed: most conversations short, some long
    with_outbox, outbox_rows, failed = replies
    assert with_outbox == outbox_rows > 0 and failed < outbox_rows / 10
    # The identity sequences moved past the generated ids.
    highest = await _scalar(bulk_engine, "SELECT max(id) FROM students")
    async with bulk_engine.begin() as conn:
        fresh = (
            await conn.execute(
                text(
                    "INSERT INTO students (telegram_user_id, admission_no, full_name, phone, "
                    "year_of_study) VALUES (1, 'NEW/1', 'New Student', '+1', 1) RETURNING id"
                )
            )
        ).scalar_one()
    assert fresh > highest

    # A second run adds on top, still consistent, with the indexes kept (a small addition).
    await generate(bulk_engine, Counts(tickets=500, messages=2000), lines.append)
    assert await _scalar(bulk_engine, "SELECT count(*) FROM support_tickets") == tickets + 3500
    assert await _scalar(bulk_engine, "SELECT count(*) FROM support_messages") == messages + 26000
    async with bulk_engine.connect() as conn:
        assert tuple((await conn.execute(text(MISMATCHES))).one()) == (0, 0, 0, 0, 0, 0)
        indexes = await conn.execute(
            text("SELECT count(*) FROM pg_indexes WHERE tablename = 'support_tickets'")
        )
        assert indexes.scalar_one() >= 9


@pytest.mark.parametrize(
    "counts",
    [
        Counts(tickets=10, messages=5),
        Counts(messages=5),
        Counts(students=-1),
    ],
)
def test_impossible_counts_are_refused(counts: Counts) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is for the CLI's user
        check_counts(counts)
