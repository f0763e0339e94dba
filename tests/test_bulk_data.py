"""`counseldesk demo-data --students/--tickets/--messages/--appointments`: exact counts, inbox
columns that agree with the generated messages, appointments that never overlap, realistic
shares, and a second run that adds on top."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from counseldesk.appointments import schedule
from counseldesk.appointments.slots import BookingWindow, free_slots_on
from counseldesk.bulk_data import Counts, appointment_shape, check_counts, generate
from counseldesk.db import migrate
from counseldesk.db.engine import create_engine
from counseldesk.demo import load_demo_data
from tests.conftest import make_settings, recreate_database
from tests.support.activity_days import assert_counts_agree, vacuumed_and_analyzed

# Every denormalized column of a ticket, recomputed from its messages and its student, and
# the search vectors of the ticket and of its messages.
MISMATCHES = """
SELECT count(*) FILTER (WHERE t.message_count <> x.n),
       count(*) FILTER (WHERE t.last_student_message_id IS DISTINCT FROM x.last_student),
       count(*) FILTER (WHERE t.last_activity_at <> x.last_visible_at),
       count(*) FILTER (WHERE t.last_sender_type <> x.last_sender),
       count(*) FILTER (WHERE t.last_message_preview <> left(x.last_body, 140)),
       count(*) FILTER (WHERE t.telegram_user_id <> x.tg),
       count(*) FILTER (WHERE t.student_name <> s.full_name),
       count(*) FILTER (WHERE t.subject_vector <> to_tsvector('simple', t.subject)),
       count(*) FILTER (WHERE t.name_vector <> to_tsvector('simple', t.student_name)),
       count(*) FILTER (WHERE x.stale_vectors > 0)
FROM support_tickets t
JOIN students s ON s.id = t.student_id
JOIN LATERAL (
    SELECT count(*) AS n,
           max(id) FILTER (WHERE sender_type = 'student') AS last_student,
           max(created_at) FILTER (WHERE NOT is_internal) AS last_visible_at,
           (array_agg(sender_type ORDER BY id DESC) FILTER (WHERE NOT is_internal))[1]
               AS last_sender,
           (array_agg(body ORDER BY id DESC) FILTER (WHERE NOT is_internal))[1] AS last_body,
           min(telegram_user_id) AS tg,
           count(*) FILTER (WHERE body_vector <> to_tsvector('simple', body)) AS stale_vectors
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
    async with bulk_engine.connect() as conn:
        vacuums, analyzes = await vacuumed_and_analyzed(conn)
    await generate(bulk_engine, Counts(students=400, tickets=3000, messages=24000), lines.append)

    assert lines[-1].endswith("done")
    assert await _scalar(bulk_engine, "SELECT count(*) FROM students") == students + 400
    assert await _scalar(bulk_engine, "SELECT count(*) FROM support_tickets") == tickets + 3000
    assert await _scalar(bulk_engine, "SELECT count(*) FROM support_messages") == messages + 24000
    async with bulk_engine.connect() as conn:
        # Counted again from scratch, then vacuumed and analyzed for the deep page's reads.
        assert await vacuumed_and_analyzed(conn) == (vacuums + 1, analyzes + 1)
    async with bulk_engine.connect() as conn:
        # Loaded with triggers off, then counted again: page=N's per-day counts are right.
        await assert_counts_agree(conn)
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
    assert tuple(mismatches) == (0,) * 10
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
        assert tuple((await conn.execute(text(MISMATCHES))).one()) == (0,) * 10
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
        Counts(appointments=-1),
    ],
)
def test_impossible_counts_are_refused(counts: Counts) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is for the CLI's user
        check_counts(counts)


# Appointments that overlap another non-canceled one of the same counselor (or student):
# sorted by start, an interval overlaps an earlier one exactly when it starts before the
# latest end among those before it.
OVERLAPS = """
SELECT count(*) FILTER (WHERE starts_at < counselor_busy_until),
       count(*) FILTER (WHERE starts_at < student_busy_until)
FROM (
    SELECT starts_at,
           max(ends_at) OVER (PARTITION BY counselor_id ORDER BY starts_at, id
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
               AS counselor_busy_until,
           max(ends_at) OVER (PARTITION BY student_id ORDER BY starts_at, id
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
               AS student_busy_until
    FROM appointments WHERE status <> 'canceled'
) x
"""
# Appointments outside their counselor's working hours (office-local weekday and time).
OUTSIDE_HOURS = """
SELECT count(*) FROM appointments a
WHERE NOT EXISTS (
    SELECT 1 FROM counselor_working_hours wh
    WHERE wh.counselor_id = a.counselor_id
      AND wh.weekday = extract(isodow FROM a.starts_at AT TIME ZONE 'Africa/Nairobi') - 1
      AND (a.starts_at AT TIME ZONE 'Africa/Nairobi')::time >= wh.starts_at
      AND (a.ends_at AT TIME ZONE 'Africa/Nairobi')::time <= wh.ends_at
)
"""
EXCLUSIONS = """
SELECT count(*) FROM pg_constraint
WHERE conrelid = 'appointments'::regclass AND contype = 'x' AND convalidated
"""
BULK_COUNSELORS = "SELECT count(*) FROM counselors WHERE email LIKE '%@bulk.counseldesk.example'"


async def test_generated_appointments_never_overlap_and_look_like_an_office(
    bulk_engine: AsyncEngine,
) -> None:
    lines: list[str] = []
    before = await _scalar(bulk_engine, "SELECT count(*) FROM appointments")  # the demo's
    shape = appointment_shape(6000)
    await generate(
        bulk_engine,
        Counts(students=1500, appointments=6000),
        lines.append,
        rebuild_exclusion=True,
    )

    assert lines[-1].endswith("done")
    # The constraints were dropped for the load and added back, which checked every row again.
    assert any("added back" in line for line in lines)
    assert await _scalar(bulk_engine, "SELECT count(*) FROM appointments") == before + 6000
    assert await _scalar(bulk_engine, EXCLUSIONS) == 2
    async with bulk_engine.connect() as conn:
        assert tuple((await conn.execute(text(OVERLAPS))).one()) == (0, 0)
        assert (await conn.execute(text(OUTSIDE_HOURS))).scalar_one() == 0
        past: dict[str, float] = dict(
            (
                await conn.execute(
                    text(
                        "SELECT status::text, avg(1.0) * count(*) / sum(count(*)) OVER () "
                        "FROM appointments WHERE ends_at <= now() - interval '3 days' "
                        "GROUP BY status"
                    )
                )
            ).all()
        )
        future: dict[str, int] = dict(
            (
                await conn.execute(
                    text(
                        "SELECT status::text, count(*) FROM appointments "
                        "WHERE starts_at > now() GROUP BY status"
                    )
                )
            ).all()
        )
        history = (
            await conn.execute(
                text(
                    """
                    SELECT count(*) FILTER (WHERE created_at > starts_at),
                           count(*) FILTER (WHERE updated_at < created_at),
                           count(*) FILTER (WHERE status = 'canceled'
                                            AND (canceled_at IS NULL OR canceled_by IS NULL)),
                           count(*) FILTER (WHERE status <> 'canceled'
                                            AND canceled_at IS NOT NULL),
                           count(DISTINCT student_id),
                           max(per_student)
                    FROM (SELECT *, count(*) OVER (PARTITION BY student_id) AS per_student
                          FROM appointments) a
                    """
                )
            )
        ).one()
        hours = (
            await conn.execute(
                text(
                    """
                    SELECT count(DISTINCT wh.counselor_id), count(*) FILTER (WHERE weekday = 5),
                           count(*) FILTER (WHERE weekday = 6)
                    FROM counselor_working_hours wh JOIN counselors c ON c.id = wh.counselor_id
                    WHERE c.email LIKE '%@bulk.counseldesk.example'
                    """
                )
            )
        ).one()
    # Past: mostly completed, some no-shows and cancellations. Future: pending or confirmed,
    # a few canceled; nothing in the future is completed or a no-show.
    assert past["completed"] > 0.7 and 0.03 < past["no_show"] < 0.15
    assert 0.05 < past["canceled"] < 0.2 and set(past) <= {"completed", "no_show", "canceled"}
    assert set(future) <= {"pending", "confirmed", "canceled"}
    assert future["pending"] > 0 and future["confirmed"] > 0
    assert future.get("canceled", 0) < 0.15 * sum(future.values())
    created_late, updated_early, cancel_missing, cancel_stray, students, most = history
    assert (created_late, updated_early, cancel_missing, cancel_stray) == (0, 0, 0, 0)
    assert students > 500 and most >= 8  # regulars come weekly, most students once or twice
    counselors, saturday, sunday = hours
    assert counselors == shape.counselors == await _scalar(bulk_engine, BULK_COUNSELORS)
    assert saturday > 0 and sunday == 0

    # What a student sees: on a bulk counselor's next weekday, every slot is either free or
    # held by exactly one generated appointment.
    settings = make_settings(office_timezone="Africa/Nairobi")
    window = BookingWindow.of(settings)
    day = window.first_day + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    async with async_sessionmaker(bulk_engine)() as session:
        counselor_id = await session.scalar(
            text("SELECT min(id) FROM counselors WHERE email LIKE '%@bulk.counseldesk.example'")
        )
        availability = await schedule.load_availability(
            session, first=day, last=day, tz=settings.tz, counselor_id=counselor_id
        )
        free = await free_slots_on(session, window, day, counselor_id=counselor_id)
    (entry,) = availability.counselors
    slots = entry.slots(day, settings.tz)
    assert len(free) + len(entry.busy) == len(slots) > 0
    assert {(start, end) for start, end in entry.busy} <= {(s.starts_at, s.ends_at) for s in slots}

    # The identity sequence moved past the generated ids.
    async with bulk_engine.begin() as conn:
        assert (
            await conn.execute(text("SELECT nextval(pg_get_serial_sequence('appointments','id'))"))
        ).scalar_one() > await _scalar(bulk_engine, "SELECT max(id) FROM appointments")

    # A second run (by default, a small one) keeps the constraints in place (checked row by row)
    # and books new counselors and students who had none, so nothing it adds can collide.
    lines.clear()
    await generate(bulk_engine, Counts(students=300, appointments=700), lines.append)
    assert not any("added back" in line for line in lines)
    assert await _scalar(bulk_engine, "SELECT count(*) FROM appointments") == before + 6700
    assert await _scalar(bulk_engine, EXCLUSIONS) == 2
    assert await _scalar(bulk_engine, BULK_COUNSELORS) == shape.counselors + 3
    async with bulk_engine.connect() as conn:
        assert tuple((await conn.execute(text(OVERLAPS))).one()) == (0, 0)


async def test_appointments_need_students_without_appointments(bulk_engine: AsyncEngine) -> None:
    # The demo's five students all have demo appointments: nobody is left to book.
    with pytest.raises(ValueError, match="add --students"):
        await generate(bulk_engine, Counts(appointments=100), lambda _: None)
    assert await _scalar(bulk_engine, BULK_COUNSELORS) == 0
