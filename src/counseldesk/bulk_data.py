"""Bulk demo data: millions of students, tickets, messages and appointments, generated inside
PostgreSQL.

`counseldesk demo-data --students N --tickets N --messages N --appointments N` calls `generate`.
Everything is set-based SQL (`INSERT ... SELECT` over `generate_series`), so no row ever travels
through Python; two connections work in parallel because this is a 2-core machine's whole budget.

How the data stays consistent without a second pass:
- Every random choice is a hash of a row's id (`rnd(id, salt)`), not `random()`, so the ticket
  insert can compute its last message's preview, sender and time with the very same formulas
  the message insert uses later.
- Ids are assigned here, not by the identity sequences (which are moved past them at the end):
  a ticket's messages occupy the id range `msg_start + 1 .. msg_start + msg_count`, and a
  counselor reply's outbox row has id `notification_base + message id`.

Realism, roughly as an office of this size would look after three years: tickets spread over
that time, most closed, the recent ones open, in progress or replied; open ones mostly
unassigned; a few percent urgent (half of those flagged as a crisis); categories skewed; message
counts skewed (most conversations short, some long, a few very long ones for deep chat paging);
counselors' read marks on tickets they handled; outbox rows (mostly sent, some failed) for the
last year's replies — older ones are what archiving would have removed.

Speed: when a table receives more rows than it holds, its secondary indexes are dropped first
and rebuilt at the end (one sorted build is many times cheaper than millions of random inserts,
and the GIN full-text index most of all); with superuser rights foreign-key triggers are skipped
(`session_replication_role = replica`) because the generator builds the references itself.
Autovacuum is paused on the tables while they load, and VACUUM ANALYZE runs at the end so the
visibility map (index-only scans) and planner statistics are right from the first query.

Appointments (see `_plan_appointments`) come with counselors of their own, working hours and
a three-year history, and hold the two exclusion constraints (no counselor and no student in
two overlapping appointments) by construction rather than by checking.
"""

from __future__ import annotations

# Table names in this module's SQL are its own temporary tables' (never input); every value
# travels as a bound parameter.
# ruff: noqa: S608
import asyncio
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from counseldesk.support.maintenance import recount_activity_days
from counseldesk.support.models import support_ticket_activity_days

Report = Callable[[str], None]

# Rows per statement: big enough that per-statement overhead vanishes, small enough that
# progress shows and one statement's memory stays modest.
STUDENT_CHUNK = 250_000
TICKET_CHUNK = 250_000
MESSAGE_CHUNK = 1_000_000
# Telegram ids of generated students start here: far from real accounts and from the demo's.
TELEGRAM_ID_BASE = 5_000_000_000
# Conversations long enough to page through thousands of messages (only in large data sets).
GIANT_TICKETS = 8
GIANT_WEIGHT = 1000.0
# Replies older than this have no outbox row (archiving keeps sent notifications for a year).
NOTIFICATION_DAYS = 365
SPAN_DAYS = 3 * 365
# Appointments: how full a counselor's past working hours are (weekdays; Saturdays are
# quieter), and the fewest counselors a set is spread over. The number of bulk counselors
# follows from the requested count, so a million appointments fill three years.
APPOINTMENT_CHUNK = 250_000
BOOKED_SHARE = 0.7
SATURDAY_SHARE = 0.5
MIN_BULK_COUNSELORS = 3
# Slots per week of an average bulk counselor (see _appointment_staff: six in seven work
# Monday to Friday 8 hours a day, the others three days a week; a third add a Saturday morning).
SLOTS_PER_WEEK = 6 / 7 * 40 + 1 / 7 * 24 + 1 / 3 * 3
# Every 50th student (by registration) is a "regular", seen weekly in series of eight weeks;
# the others come once or a few times.
REGULAR_EVERY = 50
SERIES_WEEKS = 8
# Counselor indexes c = 5q + m: m < 2 see regulars, m >= 2 one-off students (40% / 60%).
REGULAR_SEATS, ONE_OFF_SEATS = 2, 3

FIRST_NAMES = [
    "Faith",
    "Kevin",
    "Lucy",
    "Samuel",
    "Ruth",
    "Brian",
    "Grace",
    "Dennis",
    "Mercy",
    "Collins",
    "Esther",
    "Victor",
    "Joy",
    "Felix",
    "Ann",
    "Peter",
    "Mary",
    "John",
    "Sharon",
    "David",
    "Cynthia",
    "Daniel",
    "Naomi",
    "Moses",
    "Purity",
    "Paul",
    "Winnie",
    "James",
    "Caroline",
    "Joseph",
    "Diana",
    "Stephen",
    "Irene",
    "Martin",
    "Lilian",
    "George",
    "Agnes",
    "Francis",
    "Beatrice",
    "Eric",
    "Janet",
    "Patrick",
    "Gladys",
    "Michael",
    "Susan",
    "Kennedy",
    "Nancy",
    "Vincent",
    "Eunice",
    "Timothy",
    "Rose",
    "Allan",
    "Sarah",
    "Ian",
    "Catherine",
    "Edwin",
    "Margaret",
    "Wycliffe",
    "Tabitha",
    "Amos",
    "Damaris",
    "Hassan",
    "Amina",
    "Omar",
    "Halima",
    "Ali",
    "Zawadi",
    "Baraka",
    "Imani",
    "Jabari",
    "Neema",
    "Juma",
    "Wanjiru",
    "Otieno",
    "Akinyi",
    "Kiprono",
    "Chebet",
]
LAST_NAMES = [
    "Achieng",
    "Mutua",
    "Nyambura",
    "Ochieng",
    "Chebet",
    "Kamau",
    "Wanjiku",
    "Otieno",
    "Kiptoo",
    "Wambui",
    "Njoroge",
    "Kariuki",
    "Omondi",
    "Kimani",
    "Odhiambo",
    "Mwangi",
    "Wafula",
    "Barasa",
    "Maina",
    "Korir",
    "Cheruiyot",
    "Rotich",
    "Kipchumba",
    "Langat",
    "Njeri",
    "Atieno",
    "Onyango",
    "Owino",
    "Muthoni",
    "Macharia",
    "Gitau",
    "Ndungu",
    "Kibet",
    "Kirui",
    "Mutai",
    "Koech",
    "Nekesa",
    "Wekesa",
    "Simiyu",
    "Juma",
    "Hassan",
    "Abdi",
    "Mohamed",
    "Ali",
    "Noor",
    "Adan",
    "Mugo",
    "Kinyua",
    "Gathoni",
    "Waweru",
    "Karanja",
    "Mbugua",
    "Ngugi",
    "Wairimu",
    "Nduta",
    "Awino",
    "Adhiambo",
    "Anyango",
    "Akoth",
    "Moraa",
    "Kerubo",
    "Nyaboke",
    "Ongeri",
    "Obiero",
    "Mboya",
    "Okoth",
    "Opiyo",
    "Oduor",
    "Were",
    "Makokha",
    "Shikuku",
    "Khaemba",
    "Masinde",
    "Opondo",
    "Lagat",
    "Tanui",
    "Biwott",
]
ADMISSION_PREFIXES = ("SC", "ED", "BA", "EN", "MD", "LW", "AG", "CS")
UNIT_PREFIXES = ("SCH", "CSC", "BBM", "EDU", "MAT", "PHY", "ECO", "LAW")

SUBJECT_TOPICS = [
    "Exam stress",
    "Cannot sleep before exams",
    "Fees balance",
    "Bursary application",
    "Looking for an internship",
    "Feeling homesick",
    "Roommate conflict",
    "Relationship problems",
    "Feeling low",
    "Anxiety attacks",
    "Missed a CAT",
    "Want to change my course",
    "Lost my scholarship",
    "Problems at home",
    "Grief after a loss",
    "Time management",
    "Group project conflict",
    "Career after graduation",
    "CV review",
    "Attachment placement",
    "Struggling with statistics",
    "No motivation",
    "Panic before presentations",
    "Lonely on campus",
    "Part-time job and studies",
    "Hostel issues",
    "Health worries",
    "Deadline extension",
    "Trouble with my supervisor",
    "Money for rent",
    "Thinking of deferring",
    "Substance use",
]
SUBJECT_TAILS = ["", " this semester", " – need advice", " (again)", " in first year", " please"]

STUDENT_OPENERS = [
    "Hello,",
    "Hi,",
    "Good morning,",
    "Good evening,",
    "Sorry to bother you,",
    "Hi again,",
    "Thank you for the reply.",
    "Hello counselor,",
    "Hey,",
    "Greetings,",
    "I hope you are well.",
    "Quick question:",
    "Update:",
    "It happened again.",
    "I tried what you said.",
    "Okay,",
    "Honestly,",
    "I don't know who else to ask.",
    "Good afternoon,",
    "One more thing,",
]
STUDENT_MIDDLES = [
    "I have been very stressed about my exams and I cannot concentrate",
    "I am not sleeping well and I feel tired in class",
    "my fees balance is still not cleared and I might miss the exams",
    "my bursary application was rejected and I do not know what to do",
    "I have been looking for an internship for months without any reply",
    "I miss home a lot and I feel alone in the hostel",
    "my roommate and I keep fighting about small things",
    "my relationship ended and I cannot focus on anything",
    "I feel low most days and I do not enjoy things anymore",
    "I get panic attacks before presentations",
    "I missed a CAT because I was sick and the lecturer refuses a retake",
    "I want to change my course but my parents do not agree",
    "I lost my scholarship after last semester's results",
    "things at home are difficult and I worry about my siblings",
    "my grandmother passed away last week and I am struggling",
    "I keep failing to manage my time between classes and work",
    "my group members do not contribute and I do all the work",
    "I do not know what career to choose after graduation",
    "could you look at my CV before I apply",
    "I have not found an attachment place yet",
    "statistics is very hard for me and I am falling behind",
    "I have no motivation to attend lectures",
    "I am anxious all the time and my heart races",
    "I feel lonely on campus and I have no friends here",
    "my part-time job leaves me no time to study",
    "the hostel is noisy and I cannot study at night",
    "I have been having headaches and I am worried",
    "I need a deadline extension for my project",
    "my supervisor does not answer my emails",
    "I do not have money for rent this month",
    "I am thinking of deferring this semester",
    "I have been drinking more than I should",
    "my results were withheld and nobody explains why",
    "I argued with my parents about my grades",
    "I feel like I am not good enough for this course",
    "I cannot afford the textbooks for this semester",
    "my landlord is threatening to evict me",
    "I am worried about my friend who stopped eating",
    "I am scared of the final year project",
    "I feel overwhelmed by everything",
]
STUDENT_CLOSERS = [
    ".",
    ". What should I do?",
    ". Can I book a session?",
    ". Please help.",
    ". Thank you.",
    ". Is there anyone I can talk to this week?",
    "... I don't know.",
    ". Can we talk tomorrow?",
    ". Sorry for the long message.",
    ". Any advice would help.",
    ". I feel a bit better after writing this.",
    ". When are you free?",
    ". Should I talk to my lecturer?",
    ". I have an exam on Monday.",
    ". Thanks for listening.",
]
COUNSELOR_OPENERS = [
    "Thank you for reaching out.",
    "Hello, thanks for writing.",
    "I hear you.",
    "That sounds really hard.",
    "Thank you for telling me.",
    "Good to hear from you again.",
    "I am glad you wrote.",
    "Thanks for the update.",
    "I understand.",
    "You are not alone in this.",
    "Well done for trying that.",
    "It makes sense that you feel this way.",
    "Hello,",
    "Hi,",
    "Thank you for your patience.",
]
COUNSELOR_MIDDLES = [
    "let us book a session this week to talk it through",
    "the finance office can set up a payment plan for the fees balance",
    "the bursary committee reviews appeals every month and I can help you write one",
    "the career office runs an internship clinic on Wednesdays",
    "many first-years feel homesick and it usually gets easier",
    "would a mediated talk with your roommate help",
    "try to keep a regular sleep routine, even during exams",
    "breathing exercises before presentations can calm the panic",
    "you can apply for a special CAT through the dean's office",
    "changing course is possible before week four; let us look at the options",
    "grief takes time and it is okay to ask for help with deadlines",
    "a weekly plan with fixed study blocks often helps",
    "please tell your lecturer about the group problem early",
    "bring your CV to the office and we will go through it together",
    "the attachment office has a list of partner companies",
    "the maths support centre has free statistics tutoring",
    "small goals for each day can bring back some motivation",
    "if the anxiety gets worse, the campus clinic can see you the same day",
    "there are student clubs that meet on Fridays; it is a good way to meet people",
    "you can ask the dean of students about a hardship grant",
    "let us talk about ways to cut down, without judgement",
    "I will email the department about your withheld results",
    "your worth is not your grades; let us talk about what you are proud of",
    "the library lends textbooks for the whole semester",
    "the housing office can mediate with your landlord",
    "please encourage your friend to come with you to the clinic",
    "we can break the project into smaller steps",
    "it is okay to feel overwhelmed; we will take it one thing at a time",
    "deferring is an option; let us look at what it means for your studies",
    "I have shared the details with the welfare office",
]
COUNSELOR_CLOSERS = [
    ".",
    ". Does Thursday at 10 work for you?",
    ". Take care.",
    ". Let me know how it goes.",
    ". I am here if you need anything.",
    ". Please write again anytime.",
    ". Would you like me to book that?",
    ". Talk soon.",
    ". How are you feeling today?",
    ". You did the right thing by reaching out.",
    ". I will follow up on Monday.",
    ". Here is the office number: +254 700 123 456.",
]
NOTES = [
    "Student seems calmer than last week.",
    "Follow up after exams.",
    "Referred to the finance office.",
    "Check in again on Friday.",
    "Discussed with the dean of students.",
    "Possible referral to the campus clinic.",
    "Parent called the office about this.",
    "Student missed the booked session.",
]
SYSTEM_EVENTS = [
    "Status: Open → In progress",
    "Priority: Medium → High",
    "Taken",
    "Status: Replied → In progress",
    "Reopened by the student",
]

CANCEL_REASONS = [
    "Counselor unwell",
    "Staff meeting called at short notice",
    "Counselor attending a crisis on campus",
    "Office closed for a university event",
    "Double-booked; please pick another time",
]

# Sender kinds in the message pool (smallint keys of the pool table).
STUDENT, COUNSELOR, NOTE, SYSTEM = 1, 2, 3, 4


@dataclass(frozen=True)
class Counts:
    students: int = 0
    tickets: int = 0
    messages: int = 0
    appointments: int = 0


@dataclass
class _Run:
    engine: AsyncEngine
    report: Report
    counts: Counts
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    started: float = field(default_factory=time.monotonic)
    superuser: bool = False
    student_base: int = 0
    ticket_base: int = 0
    message_base: int = 0
    notification_base: int = 0
    appointment_base: int = 0
    fallback_counselor: int | None = None
    people: int = 0
    tz: str = "Africa/Nairobi"
    booking_days: int = 30

    def say(self, message: str) -> None:
        self.report(f"[{time.monotonic() - self.started:7.1f}s] {message}")

    @property
    def plan(self) -> str:
        return f"bulk_plan_{self.tag}"

    @property
    def pool(self) -> str:
        return f"bulk_pool_{self.tag}"

    @property
    def people_table(self) -> str:
        return f"bulk_people_{self.tag}"

    @property
    def staff(self) -> str:
        return f"bulk_staff_{self.tag}"

    @property
    def clients(self) -> str:
        return f"bulk_clients_{self.tag}"

    @property
    def booked(self) -> str:
        return f"bulk_booked_{self.tag}"

    @property
    def hours_table(self) -> str:
        return f"bulk_hours_{self.tag}"

    @property
    def temp_tables(self) -> tuple[str, ...]:
        return (
            self.plan,
            self.pool,
            f"{self.pool}_size",
            self.people_table,
            self.staff,
            self.clients,
            self.booked,
            self.hours_table,
        )


Job = Callable[[AsyncConnection], Awaitable[None]]

# rnd(id, salt): a uniform number in [0, 1) that depends only on its arguments. hashint8extended
# is PostgreSQL's 64-bit hash; its top 53 bits make a double. Plain SQL, so the planner inlines it.
_RND = """
CREATE OR REPLACE FUNCTION pg_temp.rnd(a bigint, salt bigint) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT ((hashint8extended(a, salt) >> 11) & 9007199254740991)::float8
          / 9007199254740992.0 $$
"""


async def _connect(run: _Run) -> AsyncConnection:
    conn = await run.engine.connect()
    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
    await conn.exec_driver_sql(_RND)
    for setting in (
        "synchronous_commit = off",
        "work_mem = '256MB'",
        "maintenance_work_mem = '1GB'",
        "max_parallel_maintenance_workers = 2",
    ):
        await conn.exec_driver_sql(f"SET {setting}")
    if run.superuser:
        # Foreign keys are right by construction; their per-row triggers would cost as much as
        # the inserts themselves.
        await conn.exec_driver_sql("SET session_replication_role = replica")
    return conn


async def _parallel(run: _Run, jobs: Sequence[Job], workers: int = 2) -> None:
    """Run the jobs on `workers` connections; each connection takes the next job when free."""
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        conn = await _connect(run)
        try:
            while not queue.empty():
                await queue.get_nowait()(conn)
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(max(1, min(workers, len(jobs))))))


def _ranges(total: int, size: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + size - 1, total)) for lo in range(1, total + 1, size)]


# --- the message formulas, shared by the ticket insert (its last message) and the messages ------


def _kind(k: str, m: str) -> str:
    """Sender kind of message k (1-based) of plan row p, whose id is m.

    The student speaks first; the last one is the plan's last sender; a counselor's last word
    follows a student message (so the ticket's last_student_message_id is msg_start + c, or + c - 1
    when the counselor spoke last); the rest are drawn at random.
    """
    return f"""(CASE WHEN {k} = 1 THEN {STUDENT}
         WHEN {k} = p.msg_count THEN CASE p.last_sender WHEN 's' THEN {STUDENT}
                                                       ELSE {COUNSELOR} END
         WHEN {k} = p.msg_count - 1 AND p.last_sender = 'c' THEN {STUDENT}
         WHEN pg_temp.rnd({m}, 41) < 0.50 THEN {STUDENT}
         WHEN pg_temp.rnd({m}, 41) < 0.92 THEN {COUNSELOR}
         WHEN pg_temp.rnd({m}, 41) < 0.97 THEN {NOTE}
         ELSE {SYSTEM} END)"""


def _at(k: str, m: str) -> str:
    """Message k's time: k - 1 gaps after the ticket opened, plus jitter under half a gap."""
    return f"""(CASE WHEN {k} = 1 THEN p.created
         ELSE p.created + make_interval(secs => (({k} - 1) + 0.4 * pg_temp.rnd({m}, 42))
                                                * p.gap_secs) END)"""


def _pool_n(m: str) -> str:
    """Which text of its kind's pool message m uses (ps.size: how many texts that kind has)."""
    return f"1 + floor(pg_temp.rnd({m}, 43) * ps.size)::int"


def _unit(kind: str, m: str) -> str:
    """Student messages sometimes name a course unit (SCH0420...): rare words to search for."""
    return f"""(CASE WHEN {kind} = {STUDENT} AND pg_temp.rnd({m}, 46) < 0.05
         THEN ' (unit ' || (CAST(:units AS text[]))[1 + ({m} % 8)::int]
              || lpad(floor(pg_temp.rnd({m}, 47) * 10000)::text, 4, '0') || ')'
         ELSE '' END)"""


def _media(kind: str, k: str, m: str) -> str:
    """Student attachments: 3% of their messages, never a ticket's first or last message."""
    return f"""(CASE WHEN {kind} = {STUDENT} AND {k} > 1 AND {k} < p.msg_count
              AND pg_temp.rnd({m}, 48) < 0.03
         THEN CASE WHEN pg_temp.rnd({m}, 44) < 0.4 THEN 'photo'
                   WHEN pg_temp.rnd({m}, 44) < 0.7 THEN 'document' ELSE 'voice' END END)"""


def _generated_messages(run: _Run, where: str) -> str:
    """The messages of the plan rows matching `where`: id m, kind, time, text and media."""
    return f"""
        SELECT x.*, pool.body || {_unit("x.kind", "x.m")} AS body
        FROM (
            SELECT p.ticket_id, p.tg, p.assignee, p.msg_count, k, m,
                   {_kind("k", "m")} AS kind,
                   {_at("k", "m")} AS at,
                   {_media(_kind("k", "m"), "k", "m")} AS media
            FROM {run.plan} p,
                 LATERAL generate_series(1, p.msg_count) k,
                 LATERAL (SELECT p.msg_start + k AS m) mm
            WHERE {where}
        ) x
        JOIN {run.pool}_size ps ON ps.kind = x.kind
        JOIN {run.pool} pool ON pool.kind = x.kind AND pool.n = {_pool_n("x.m")}
    """


# --- the steps ------------------------------------------------------------------------------------


async def _build_pool(conn: AsyncConnection, run: _Run) -> None:
    """Message texts to draw from: every opener x middle x closer combination per sender kind."""
    await conn.exec_driver_sql(
        f"CREATE UNLOGGED TABLE {run.pool} (kind smallint, n int, body text, PRIMARY KEY (kind, n))"
    )
    for kind, parts in (
        (STUDENT, (STUDENT_OPENERS, STUDENT_MIDDLES, STUDENT_CLOSERS)),
        (COUNSELOR, (COUNSELOR_OPENERS, COUNSELOR_MIDDLES, COUNSELOR_CLOSERS)),
        (NOTE, ([""], NOTES, [""])),
        (SYSTEM, ([""], SYSTEM_EVENTS, [""])),
    ):
        await conn.execute(
            text(
                f"""
                INSERT INTO {run.pool} (kind, n, body)
                SELECT :kind, row_number() OVER (), ltrim(a || ' ' || b || c)
                FROM unnest(CAST(:a AS text[])) a,
                     unnest(CAST(:b AS text[])) b,
                     unnest(CAST(:c AS text[])) c
                """
            ),
            {"kind": kind, "a": list(parts[0]), "b": list(parts[1]), "c": list(parts[2])},
        )
    await conn.exec_driver_sql(
        f"CREATE UNLOGGED TABLE {run.pool}_size AS "
        f"SELECT kind, count(*)::int AS size FROM {run.pool} GROUP BY kind"
    )
    await conn.exec_driver_sql(f"ANALYZE {run.pool}")
    await conn.exec_driver_sql(f"ANALYZE {run.pool}_size")


def _students_job(run: _Run, lo: int, hi: int) -> Job:
    total = run.counts.students

    async def job(conn: AsyncConnection) -> None:
        await conn.execute(
            text(
                """
                INSERT INTO students (id, telegram_user_id, admission_no, full_name, phone,
                                      year_of_study, language_code, created_at, updated_at)
                SELECT s.id,
                       :tg_base + s.id,
                       (CAST(:prefixes AS text[]))[1 + (s.id % 8)::int] || '/'
                           || lpad(s.id::text, 7, '0') || '/' || (2019 + s.id % 6)::text,
                       (CAST(:first AS text[]))[1 + floor(pg_temp.rnd(s.id, 11) * :n_first)::int]
                           || ' ' ||
                       (CAST(:last AS text[]))[1 + floor(pg_temp.rnd(s.id, 12) * :n_last)::int],
                       '+2547' || lpad((s.id * 7919 % 100000000)::text, 8, '0'),
                       1 + floor(pg_temp.rnd(s.id, 13) ^ 1.3 * 5)::int,
                       'en',
                       s.created, s.created
                FROM (
                    SELECT :base + g AS id,
                           now() - make_interval(days => :span)
                               + make_interval(secs => g::float8 / :total * :span * 86400.0)
                               AS created
                    FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g
                ) s
                """
            ),
            {
                "tg_base": TELEGRAM_ID_BASE,
                "prefixes": list(ADMISSION_PREFIXES),
                "first": FIRST_NAMES,
                "last": LAST_NAMES,
                "n_first": len(FIRST_NAMES),
                "n_last": len(LAST_NAMES),
                "base": run.student_base,
                "span": SPAN_DAYS + 365,
                "total": total,
                "lo": lo,
                "hi": hi,
            },
        )
        run.say(f"students {hi:,} / {total:,}")

    return job


async def _build_people(conn: AsyncConnection, run: _Run) -> None:
    """The students tickets are drawn from, numbered 1..n: this run's, or else all of them."""
    table = run.people_table
    await conn.exec_driver_sql(
        f"CREATE UNLOGGED TABLE {table} (n bigint PRIMARY KEY, id bigint, tg bigint)"
    )
    await conn.execute(
        text(
            f"INSERT INTO {table} (n, id, tg) "
            "SELECT row_number() OVER (ORDER BY id), id, telegram_user_id FROM students "
            "WHERE id > :base"
        ),
        {"base": run.student_base if run.counts.students else 0},
    )
    run.people = int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
    await conn.exec_driver_sql(f"ANALYZE {table}")


async def _build_plan(conn: AsyncConnection, run: _Run) -> None:
    """One row per new ticket, holding everything its row and its messages are computed from."""
    tickets, messages = run.counts.tickets, run.counts.messages
    await conn.exec_driver_sql(
        f"""
        CREATE UNLOGGED TABLE {run.plan} (
            g bigint PRIMARY KEY, ticket_id bigint, student_id bigint, tg bigint,
            category_id smallint, assignee int, status ticket_status, priority ticket_priority,
            crisis boolean, msg_count int, msg_start bigint, created timestamptz,
            gap_secs float8, last_sender char(1)
        )
        """
    )
    # Message counts: a skewed weight per ticket (a few giants when the set is large), scaled
    # to the requested total; rounding down leaves a deficit smaller than the ticket count,
    # which one extra message for that many tickets removes, so the total is exact.
    giants = GIANT_TICKETS if tickets >= 10_000 else 0
    await conn.execute(
        text(
            f"""
            WITH w AS (
                SELECT g,
                       CASE WHEN :giants > 0 AND g % (:tickets / greatest(:giants, 1)) = 0
                            THEN :giant_weight
                            ELSE (-ln(1.0 - pg_temp.rnd(g, 21))) ^ 1.5 END AS w
                FROM generate_series(1, CAST(:tickets AS bigint)) g
            ), c AS (
                SELECT g, 1 + floor((:messages - :tickets) * w / sum(w) OVER ())::bigint AS c
                FROM w
            ), fixed AS (
                SELECT g, c + CASE WHEN g <= :messages - sum(c) OVER () THEN 1 ELSE 0 END AS c
                FROM c
            )
            INSERT INTO {run.plan} (g, ticket_id, msg_count, msg_start)
            SELECT g, :ticket_base + g, c, :message_base + sum(c) OVER (ORDER BY g) - c
            FROM fixed
            """
        ),
        {
            "giants": giants,
            "giant_weight": GIANT_WEIGHT,
            "tickets": tickets,
            "messages": messages,
            "ticket_base": run.ticket_base,
            "message_base": run.message_base,
        },
    )
    # Who, when, what state. Tickets idle for under two weeks are the live ones.
    await conn.execute(
        text(
            f"""
            WITH ctx AS (
                SELECT (SELECT array_agg(id ORDER BY id) FROM counselors WHERE is_active)
                           AS counselors,
                       (SELECT array_agg(id ORDER BY sort_order, id) FROM support_categories
                        WHERE is_active) AS categories
            ), timed AS (
                SELECT p.g, p.msg_count, t.created,
                       -- a minute to a day between messages (log-uniform), never past now
                       least(60.0 * exp(pg_temp.rnd(p.g, 32) * ln(1440.0)),
                             extract(epoch FROM now() - t.created) / p.msg_count) AS gap
                FROM {run.plan} p,
                     LATERAL (SELECT now() - make_interval(days => :span)
                                  + make_interval(secs => p.g::float8 / :tickets * :span * 86400.0
                                                          - pg_temp.rnd(p.g, 31) * 600) AS created
                             ) t
            ), st AS (
                SELECT g, created, gap, msg_count, r, pr,
                       CASE WHEN extract(epoch FROM now() - created) - (msg_count - 1) * gap
                                 < 14 * 86400 THEN
                                CASE WHEN r < 0.30 THEN 'open' WHEN r < 0.55 THEN 'in_progress'
                                     WHEN r < 0.85 THEN 'replied' WHEN r < 0.95 THEN 'resolved'
                                     ELSE 'closed' END
                            ELSE
                                CASE WHEN r < 0.005 THEN 'open' WHEN r < 0.01 THEN 'in_progress'
                                     WHEN r < 0.02 THEN 'replied' WHEN r < 0.12 THEN 'resolved'
                                     ELSE 'closed' END
                       END AS status
                FROM (SELECT *, pg_temp.rnd(g, 33) AS r, pg_temp.rnd(g, 34) AS pr FROM timed) x
            )
            UPDATE {run.plan} p SET
                created = st.created,
                gap_secs = st.gap,
                status = CAST(st.status AS ticket_status),
                student_id = pe.id,
                tg = pe.tg,
                priority = CAST(CASE WHEN st.pr < 0.15 THEN 'low' WHEN st.pr < 0.77 THEN 'medium'
                                     WHEN st.pr < 0.97 THEN 'high' ELSE 'urgent' END
                                AS ticket_priority),
                crisis = st.pr >= 0.985,
                category_id = CASE WHEN pg_temp.rnd(p.g, 35) < 0.03
                                        OR ctx.categories IS NULL THEN NULL
                                   ELSE ctx.categories[1 + floor(pg_temp.rnd(p.g, 36) ^ 1.6
                                                       * cardinality(ctx.categories))::int]
                              END,
                assignee = CASE WHEN ctx.counselors IS NULL THEN NULL
                                WHEN st.status = 'open' AND pg_temp.rnd(p.g, 37) < 0.85 THEN NULL
                                WHEN st.status <> 'open' AND pg_temp.rnd(p.g, 37) < 0.03
                                THEN NULL
                                ELSE ctx.counselors[1 + floor(pg_temp.rnd(p.g, 38) ^ 1.3
                                                    * cardinality(ctx.counselors))::int]
                           END,
                last_sender = CASE WHEN p.msg_count = 1 THEN 's'
                                   WHEN st.status = 'replied' THEN 'c'
                                   WHEN st.status IN ('open', 'in_progress') THEN 's'
                                   WHEN pg_temp.rnd(p.g, 39) < 0.5 THEN 's' ELSE 'c' END
            FROM st, ctx, {run.people_table} pe
            WHERE st.g = p.g
              AND pe.n = 1 + floor(pg_temp.rnd(p.g, 30) ^ 1.8 * :people)::bigint
            """
        ),
        {"span": SPAN_DAYS, "tickets": tickets, "people": run.people},
    )
    await conn.exec_driver_sql(f"ANALYZE {run.plan}")


def _tickets_job(run: _Run, lo: int, hi: int) -> Job:
    """Tickets g = lo..hi with their inbox columns, and their assignees' read marks."""
    total = run.counts.tickets
    # The ticket's last message (k = c), computed with the messages' own formulas.
    last_k = "p.msg_count"
    last_m = "(p.msg_start + p.msg_count)"
    last_kind = _kind(last_k, last_m)

    async def job(conn: AsyncConnection) -> None:
        await conn.execute(
            text(
                f"""
                INSERT INTO support_tickets (id, telegram_user_id, student_id, student_name,
                    category_id, subject, status, priority, assigned_counselor_id,
                    crisis_detected_at, created_at, updated_at, closed_at, last_activity_at,
                    last_message_preview, last_sender_type, last_student_message_id,
                    message_count)
                SELECT p.ticket_id, p.tg, p.student_id, student.full_name, p.category_id,
                       (CAST(:topics AS text[]))[1 + floor(pg_temp.rnd(p.g, 51) ^ 1.4
                                                           * :n_topics)::int]
                           || (CAST(:tails AS text[]))[1 + floor(pg_temp.rnd(p.g, 52)
                                                                 * :n_tails)::int],
                       p.status,
                       CASE WHEN p.crisis THEN 'urgent' ELSE p.priority END,
                       p.assignee,
                       CASE WHEN p.crisis THEN p.created + interval '1 minute' END,
                       p.created,
                       coalesce(closed.at, last.at),
                       closed.at,
                       last.at,
                       left(pool.body || {_unit(last_kind, last_m)}, 140),
                       CAST(CASE p.last_sender WHEN 's' THEN 'student' ELSE 'counselor' END
                            AS sender_type),
                       p.msg_start + p.msg_count - CASE p.last_sender WHEN 's' THEN 0 ELSE 1 END,
                       p.msg_count
                FROM {run.plan} p
                CROSS JOIN LATERAL (SELECT {_at(last_k, last_m)} AS at) last
                CROSS JOIN LATERAL (
                    SELECT CASE WHEN p.status IN ('resolved', 'closed')
                                THEN least(now(), last.at + make_interval(
                                     secs => 3600 * (1 + 47 * pg_temp.rnd(p.g, 53)))) END AS at
                ) closed
                JOIN {run.pool}_size ps ON ps.kind = {last_kind}
                JOIN {run.pool} pool ON pool.kind = ps.kind AND pool.n = {_pool_n(last_m)}
                JOIN students student ON student.id = p.student_id
                WHERE p.g BETWEEN :lo AND :hi
                """
            ),
            {
                "topics": SUBJECT_TOPICS,
                "n_topics": len(SUBJECT_TOPICS),
                "tails": SUBJECT_TAILS,
                "n_tails": len(SUBJECT_TAILS),
                "units": list(UNIT_PREFIXES),
                "lo": lo,
                "hi": hi,
            },
        )
        # What the assignee has read: everything on tickets they answered or closed, about
        # two thirds of the conversation on the ones still waiting for them.
        await conn.execute(
            text(
                f"""
                INSERT INTO support_ticket_reads (counselor_id, ticket_id, last_read_message_id,
                                                  updated_at)
                SELECT p.assignee, p.ticket_id,
                       CASE WHEN p.status IN ('open', 'in_progress')
                            THEN p.msg_start + greatest(1, floor(p.msg_count * 0.66)::int)
                            ELSE p.msg_start + p.msg_count
                                 - CASE p.last_sender WHEN 's' THEN 0 ELSE 1 END END,
                       now()
                FROM {run.plan} p
                WHERE p.g BETWEEN :lo AND :hi AND p.assignee IS NOT NULL
                """
            ),
            {"lo": lo, "hi": hi},
        )
        run.say(f"tickets {hi:,} / {total:,}")

    return job


def _messages_job(run: _Run, lo: int, hi: int, done: list[int]) -> Job:
    """Messages of tickets g = lo..hi, after the outbox rows of their recent counselor replies
    (first, so the foreign key holds even where triggers stay on)."""
    total = run.counts.messages
    params = {
        "lo": lo,
        "hi": hi,
        "units": list(UNIT_PREFIXES),
        "days": NOTIFICATION_DAYS,
        "notification_base": run.notification_base,
        "counselor": run.fallback_counselor,
    }
    messages = _generated_messages(run, "p.g BETWEEN :lo AND :hi")

    async def job(conn: AsyncConnection) -> None:
        await conn.execute(
            text(
                f"""
                INSERT INTO notifications (id, kind, telegram_user_id, payload, scheduled_for,
                    status, attempts, last_error, sent_at, telegram_message_id, created_at)
                SELECT :notification_base + g.m, 'support_reply', g.tg,
                       jsonb_build_object('text', g.body,
                                          'ref', jsonb_build_object('ticket_id', g.ticket_id,
                                                                    'message_id', g.m)),
                       g.at,
                       CAST(CASE WHEN g.at > now() - interval '1 minute' THEN 'pending'
                                 WHEN pg_temp.rnd(g.m, 61) < 0.015 THEN 'failed'
                                 ELSE 'sent' END AS notification_status),
                       CASE WHEN g.at > now() - interval '1 minute' THEN 0
                            WHEN pg_temp.rnd(g.m, 61) < 0.015 THEN 5 ELSE 1 END,
                       CASE WHEN g.at <= now() - interval '1 minute'
                             AND pg_temp.rnd(g.m, 61) < 0.015
                            THEN 'Forbidden: bot was blocked by the user' END,
                       CASE WHEN g.at <= now() - interval '1 minute'
                             AND pg_temp.rnd(g.m, 61) >= 0.015
                            THEN g.at + interval '1 second' END,
                       CASE WHEN g.at <= now() - interval '1 minute'
                             AND pg_temp.rnd(g.m, 61) >= 0.015 THEN g.m END,
                       g.at
                FROM ({messages}) g
                WHERE g.kind = {COUNSELOR} AND g.at > now() - make_interval(days => :days)
                """
            ),
            params,
        )
        result = await conn.execute(
            text(
                f"""
                INSERT INTO support_messages (id, ticket_id, telegram_user_id, sender_type,
                    counselor_id, body, is_internal, media_kind, media_file_id, media_file_name,
                    media_mime_type, notification_id, created_at)
                SELECT g.m, g.ticket_id, g.tg,
                       CAST(CASE g.kind WHEN {STUDENT} THEN 'student' WHEN {SYSTEM} THEN 'system'
                                        ELSE 'counselor' END AS sender_type),
                       CASE WHEN g.kind IN ({COUNSELOR}, {NOTE})
                            THEN coalesce(g.assignee, :counselor) END,
                       CASE WHEN g.media IS NOT NULL AND pg_temp.rnd(g.m, 45) < 0.5 THEN ''
                            ELSE g.body END,
                       g.kind IN ({NOTE}, {SYSTEM}),
                       g.media,
                       CASE WHEN g.media IS NOT NULL THEN 'BULK-' || g.m::text END,
                       CASE g.media WHEN 'document' THEN 'notes.pdf' END,
                       CASE g.media WHEN 'photo' THEN 'image/jpeg'
                                    WHEN 'document' THEN 'application/pdf'
                                    WHEN 'voice' THEN 'audio/ogg' END,
                       CASE WHEN g.kind = {COUNSELOR}
                             AND g.at > now() - make_interval(days => :days)
                            THEN :notification_base + g.m END,
                       g.at
                FROM ({messages}) g
                """
            ),
            params,
        )
        done[0] += int(result.rowcount or 0)
        run.say(f"messages {done[0]:,} / {total:,}")

    return job


# --- appointments --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppointmentShape:
    counselors: int
    past_days: int


def appointment_shape(count: int) -> AppointmentShape:
    """How many bulk counselors over how many past days hold `count` appointments with about
    BOOKED_SHARE of their hours taken (a tenth to spare, so the sampling never runs short)."""
    per_counselor_day = SLOTS_PER_WEEK / 7 * BOOKED_SHARE
    wanted = count * 1.1
    counselors = max(MIN_BULK_COUNSELORS, math.ceil(wanted / (per_counselor_day * SPAN_DAYS)))
    days = min(SPAN_DAYS, math.ceil(wanted / (per_counselor_day * counselors)))
    return AppointmentShape(counselors, max(days, 14))


def _min_clients(counselors: int) -> int:
    """Students needed so that every hour's seats map to distinct students (see the insert)."""
    return REGULAR_EVERY * REGULAR_SEATS * math.ceil(counselors / 5)


async def _appointment_staff(
    conn: AsyncConnection, run: _Run, shape: AppointmentShape, password_hash: str
) -> None:
    """Counselors of this run (numbered c = 0..K-1), their working hours and slot length.

    Every range starts on a full hour and every slot lasts an hour, so two bulk appointments
    overlap exactly when they start at the same instant — what the student assignment relies on.
    """
    seed = int(run.tag, 16)
    await conn.execute(
        text(
            """
            INSERT INTO counselors (email, full_name, password_hash, role, created_at,
                                    updated_at)
            SELECT 'counselor' || n || '.' || :tag || '@bulk.counseldesk.example',
                   CASE WHEN pg_temp.rnd(s.seed + n, 91) < 0.2 THEN 'Dr. ' ELSE '' END
                   || (CAST(:first AS text[]))[1 + floor(pg_temp.rnd(s.seed + n, 92)
                                                         * :n_first)::int]
                   || ' ' ||
                   (CAST(:last AS text[]))[1 + floor(pg_temp.rnd(s.seed + n, 93)
                                                     * :n_last)::int],
                   :hash, CAST('counselor' AS staff_role), :since, :since
            FROM generate_series(1, CAST(:k AS int)) n, (SELECT CAST(:seed AS bigint) AS seed) s
            """
        ),
        {
            "tag": run.tag,
            "seed": seed,
            "first": FIRST_NAMES,
            "last": LAST_NAMES,
            "n_first": len(FIRST_NAMES),
            "n_last": len(LAST_NAMES),
            "hash": password_hash,
            "since": datetime.now().astimezone() - timedelta(days=shape.past_days + 30),
            "k": shape.counselors,
        },
    )
    await conn.execute(
        text(
            f"CREATE UNLOGGED TABLE {run.staff} AS "
            "SELECT (row_number() OVER (ORDER BY id) - 1)::int AS c, id FROM counselors "
            "WHERE email LIKE :pattern"
        ),
        {"pattern": f"%.{run.tag}@bulk.counseldesk.example"},
    )
    # Half start at 8:00, half at 9:00; one in seven works Monday, Wednesday and Friday only;
    # every third also works Saturday morning.
    await conn.exec_driver_sql(
        f"""
        INSERT INTO counselor_working_hours (counselor_id, weekday, starts_at, ends_at)
        SELECT s.id, wd, make_time(r.h0 + s.c % 2, 0, 0), make_time(r.h1 + s.c % 2, 0, 0)
        FROM {run.staff} s, generate_series(0, 4) wd, (VALUES (8, 12), (13, 17)) r (h0, h1)
        WHERE s.c % 7 <> 6 OR wd IN (0, 2, 4)
        UNION ALL
        SELECT s.id, 5, time '09:00', time '12:00' FROM {run.staff} s WHERE s.c % 3 = 0
        """
    )
    await conn.exec_driver_sql(
        "INSERT INTO counselor_schedules (counselor_id, slot_minutes) "
        f"SELECT id, 60 FROM {run.staff}"
    )


async def _appointment_clients(conn: AsyncConnection, run: _Run) -> int:
    """The students appointments are drawn from — those with none yet, so nothing this run
    adds can overlap an existing appointment — numbered 1..n in registration order."""
    table = run.clients
    await conn.exec_driver_sql(
        f"CREATE UNLOGGED TABLE {table} (n bigint PRIMARY KEY, id bigint, created timestamptz)"
    )
    await conn.exec_driver_sql(
        f"""
        INSERT INTO {table} (n, id, created)
        SELECT row_number() OVER (ORDER BY created_at, id), id, created_at FROM students s
        WHERE NOT EXISTS (SELECT 1 FROM appointments a WHERE a.student_id = s.id)
        """
    )
    await conn.exec_driver_sql(f"CREATE INDEX ON {table} (created, n)")
    await conn.exec_driver_sql(f"ANALYZE {table}")
    return int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


async def _plan_appointments(
    conn: AsyncConnection, run: _Run, shape: AppointmentShape, now: datetime
) -> int:
    """Which hours of which bulk counselor are booked: one row per appointment.

    Every working-hour slot of the bulk counselors from `past_days` ago to the end of the
    booking window is a cell; a cell is booked with a probability that is BOOKED_SHARE in the
    past (less on Saturdays) and falls off with the days ahead in the future (students book a
    week or two out). Exactly N cells are taken by weighted sampling without replacement: the
    N smallest rnd / weight. One cell holds one appointment, so no counselor is double-booked.
    """
    today = now.astimezone(ZoneInfo(run.tz)).date()
    await conn.execute(
        text(
            f"""
            CREATE UNLOGGED TABLE {run.booked} AS
            WITH days AS (
                SELECT d::date AS day
                FROM generate_series(CAST(:first AS date), CAST(:last AS date),
                                     interval '1 day') d
                WHERE d::date NOT IN (SELECT day FROM office_closed_days)
            ), cells AS (
                SELECT s.c, s.id AS counselor_id, dy.day, slot AS local_at,
                       slot AT TIME ZONE CAST(:tz AS text) AS starts_at
                FROM {run.staff} s
                JOIN counselor_working_hours wh ON wh.counselor_id = s.id
                JOIN days dy ON extract(isodow FROM dy.day) - 1 = wh.weekday
                CROSS JOIN LATERAL generate_series(dy.day + wh.starts_at,
                                                   dy.day + wh.ends_at - interval '1 hour',
                                                   interval '1 hour') slot
            ), weighted AS (
                SELECT *,
                       CASE WHEN starts_at <= CAST(:now AS timestamptz) THEN
                                CASE WHEN extract(isodow FROM day) = 6
                                     THEN CAST(:saturday AS float8)
                                     ELSE CAST(:share AS float8) END
                            ELSE CAST(:share AS float8)
                                 * exp(CAST(CAST(:today AS date) - day AS float8) / 7.0)
                                 + 0.05
                       END AS weight
                FROM cells
            ), taken AS (
                SELECT * FROM weighted
                ORDER BY pg_temp.rnd(counselor_id::bigint * 100000000
                                     + extract(epoch FROM starts_at)::bigint / 60, 71) / weight
                LIMIT :n
            )
            SELECT row_number() OVER (ORDER BY starts_at, c) AS g, c, counselor_id, day,
                   local_at, starts_at,
                   (day - DATE '2000-01-03') / {7 * SERIES_WEEKS} AS block
            FROM taken
            """
        ),
        {
            "first": today - timedelta(days=shape.past_days),
            "last": today + timedelta(days=run.booking_days),
            "tz": run.tz,
            "now": now,
            "today": today,
            "share": BOOKED_SHARE,
            "saturday": SATURDAY_SHARE,
            "n": run.counts.appointments,
        },
    )
    await conn.exec_driver_sql(f"ALTER TABLE {run.booked} ADD PRIMARY KEY (g)")
    # How many clients had registered by each booked hour, and by the start of each block of
    # SERIES_WEEKS weeks (a regular's series draws from those registered when it began).
    await conn.execute(
        text(
            f"""
            CREATE UNLOGGED TABLE {run.hours_table} AS
            SELECT 'h' AS kind, starts_at AS at, 0 AS block,
                   coalesce((SELECT n FROM {run.clients} WHERE created < x.starts_at
                             ORDER BY created DESC, n DESC LIMIT 1), 0) AS registered
            FROM (SELECT DISTINCT starts_at FROM {run.booked}) x
            UNION ALL
            SELECT 'b', NULL, block,
                   coalesce((SELECT n FROM {run.clients}
                             WHERE created < CAST(DATE '2000-01-03' + block * {7 * SERIES_WEEKS}
                                                  AS timestamp) AT TIME ZONE CAST(:tz AS text)
                             ORDER BY created DESC, n DESC LIMIT 1), 0)
            FROM (SELECT DISTINCT block FROM {run.booked}) y
            """
        ),
        {"tz": run.tz},
    )
    await conn.exec_driver_sql(f"CREATE INDEX ON {run.hours_table} (kind, at, block)")
    await conn.exec_driver_sql(f"ANALYZE {run.booked}")
    await conn.exec_driver_sql(f"ANALYZE {run.hours_table}")
    return int(await conn.scalar(text(f"SELECT count(*) FROM {run.booked}")) or 0)


def _appointments_job(
    run: _Run, lo: int, hi: int, now: datetime, shape: AppointmentShape, done: list[int]
) -> Job:
    """Appointments g = lo..hi of the plan, each with its student, state and history.

    The student: at one instant the bulk counselors c = 0..K-1 are seats c = 5q + m. Seats
    m < REGULAR_SEATS take a regular (every REGULAR_EVERY-th client), the others any other
    client; within each group a seat's index (2q + m, 3q + m - 2) is distinct and, shifted by an
    offset of the instant, is taken modulo the group's size, so no two appointments at one
    instant share a student. Two bulk appointments overlap only when they start at the same
    instant, so no student is ever in two at once. A regular's offset depends only on the
    weekday, hour and block of SERIES_WEEKS weeks: the same student sees the same counselor at
    the same hour every booked week of a block. Both groups are drawn from the clients
    registered by then — at least `_min_clients` of them, so the seats always fit (in a tiny
    data set a student may then be booked before registering).
    """
    total = run.counts.appointments
    params = {
        "lo": lo,
        "hi": hi,
        "now": now,
        "base": run.appointment_base,
        "clients": run.people,
        "least": min(run.people, _min_clients(shape.counselors)),
        "topics": SUBJECT_TOPICS,
        "n_topics": len(SUBJECT_TOPICS),
        "reasons": CANCEL_REASONS,
        "n_reasons": len(CANCEL_REASONS),
    }
    every, one_offs = REGULAR_EVERY, REGULAR_EVERY - 1

    async def job(conn: AsyncConnection) -> None:
        result = await conn.execute(
            text(
                f"""
                INSERT INTO appointments (id, student_id, counselor_id, starts_at, ends_at,
                    status, reason, cancel_reason, canceled_by, canceled_at, reschedule_count,
                    created_at, updated_at)
                SELECT x.id, pe.id, x.counselor_id, x.starts_at, x.ends_at,
                       CAST(x.status AS appointment_status),
                       CASE WHEN pg_temp.rnd(x.id, 81) < 0.75
                            THEN (CAST(:topics AS text[]))[1 + floor(pg_temp.rnd(x.id, 82) ^ 1.4
                                                                     * :n_topics)::int]
                            ELSE '' END,
                       CASE WHEN x.status = 'canceled' AND x.by_counselor
                            THEN (CAST(:reasons AS text[]))[1 + floor(pg_temp.rnd(x.id, 84)
                                                                      * :n_reasons)::int] END,
                       CASE WHEN x.status = 'canceled'
                            THEN CAST(CASE WHEN x.by_counselor THEN 'counselor' ELSE 'student'
                                      END AS appointment_canceled_by) END,
                       CASE WHEN x.status = 'canceled' THEN x.canceled_at END,
                       CASE WHEN pg_temp.rnd(x.id, 83) < 0.015 THEN 2
                            WHEN pg_temp.rnd(x.id, 83) < 0.06 THEN 1 ELSE 0 END,
                       x.created_at,
                       CASE WHEN x.status IN ('completed', 'no_show')
                            THEN least(x.now, x.ends_at + make_interval(
                                     secs => 300 + 86400 * pg_temp.rnd(x.id, 85)))
                            WHEN x.status = 'canceled' THEN x.canceled_at
                            WHEN x.status = 'confirmed'
                            THEN least(x.now, x.created_at + make_interval(
                                     secs => 600 + 86400 * pg_temp.rnd(x.id, 85)))
                            ELSE x.created_at END
                FROM (
                    SELECT :base + b.g AS id, k.now, b.counselor_id, b.starts_at,
                           b.starts_at + interval '1 hour' AS ends_at,
                           CASE
                               WHEN b.starts_at + interval '1 hour' <= k.now THEN
                                   CASE WHEN b.starts_at > k.now - interval '3 days'
                                             AND pg_temp.rnd(:base + b.g, 75) < 0.3
                                        THEN 'confirmed'  -- over, not yet marked
                                        WHEN pg_temp.rnd(:base + b.g, 74) < 0.80
                                        THEN 'completed'
                                        WHEN pg_temp.rnd(:base + b.g, 74) < 0.88 THEN 'no_show'
                                        ELSE 'canceled' END
                               WHEN b.starts_at <= k.now THEN 'confirmed'  -- under way
                               WHEN pg_temp.rnd(:base + b.g, 74) < 0.05 THEN 'canceled'
                               -- the nearer, the likelier the counselor has confirmed it
                               WHEN pg_temp.rnd(:base + b.g, 76)
                                    < 0.2 + 0.4 * least(1.0, extract(epoch FROM b.starts_at
                                                                     - k.now) / (14 * 86400.0))
                               THEN 'pending'
                               ELSE 'confirmed'
                           END AS status,
                           pg_temp.rnd(:base + b.g, 80) >= 0.7 AS by_counselor,
                           c.created_at,
                           least(k.now, greatest(c.created_at, b.starts_at - make_interval(
                               secs => 3600 + 2 * 86400 * pg_temp.rnd(:base + b.g, 79))))
                               AS canceled_at,
                           CASE WHEN seat.regular THEN {every} * (1 + seat.i)
                                ELSE seat.i / {one_offs} * {every} + seat.i % {one_offs} + 1
                           END AS n
                    FROM {run.booked} b
                    CROSS JOIN (SELECT CAST(:now AS timestamptz) AS now) k
                    JOIN {run.hours_table} hh ON hh.kind = 'h' AND hh.at = b.starts_at
                    JOIN {run.hours_table} hb ON hb.kind = 'b' AND hb.block = b.block
                    CROSS JOIN LATERAL (
                        SELECT least(:clients, greatest(hb.registered, :least)) / {every}
                                   AS regulars,
                               least(:clients, greatest(hh.registered, :least))
                               - least(:clients, greatest(hh.registered, :least)) / {every}
                                   AS others
                    ) sizes
                    CROSS JOIN LATERAL (
                        SELECT b.c % 5 < {REGULAR_SEATS} AS regular,
                               CASE WHEN b.c % 5 < {REGULAR_SEATS} THEN
                                        (floor(pg_temp.rnd(
                                             (extract(isodow FROM b.local_at) * 100
                                              + extract(hour FROM b.local_at))::bigint
                                             + b.block * 1000, 72) * sizes.regulars)::bigint
                                         + {REGULAR_SEATS} * (b.c / 5) + b.c % 5)
                                        % sizes.regulars
                                    ELSE
                                        (floor(pg_temp.rnd(
                                             extract(epoch FROM b.starts_at)::bigint, 73)
                                             * sizes.others)::bigint
                                         + {ONE_OFF_SEATS} * (b.c / 5) + b.c % 5
                                         - {REGULAR_SEATS})
                                        % sizes.others
                               END AS i
                    ) seat
                    -- booked 2 hours to 2 weeks before (mostly a few days), never after now
                    CROSS JOIN LATERAL (
                        SELECT least(b.starts_at - make_interval(
                                         secs => 7200 + 14 * 86400
                                                 * pg_temp.rnd(:base + b.g, 77) ^ 2),
                                     k.now - make_interval(
                                         secs => 3 * 86400 * pg_temp.rnd(:base + b.g, 78)))
                               AS created_at
                    ) c
                    WHERE b.g BETWEEN :lo AND :hi
                ) x
                JOIN {run.clients} pe ON pe.n = x.n
                """
            ),
            params,
        )
        done[0] += int(result.rowcount or 0)
        run.say(f"appointments {done[0]:,} / {total:,}")

    return job


async def _exclusion_constraints(conn: AsyncConnection, table: str) -> list[tuple[str, str]]:
    """(name, definition) of the table's exclusion constraints."""
    rows = await conn.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:table AS regclass) AND contype = 'x' ORDER BY conname"
        ),
        {"table": table},
    )
    return [(r[0], r[1]) for r in rows]


# --- orchestration -------------------------------------------------------------------------------

TABLES = (
    "students",
    "support_tickets",
    "support_messages",
    "notifications",
    "support_ticket_reads",
    "appointments",
)


async def _secondary_indexes(conn: AsyncConnection, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the table's indexes that back no constraint."""
    rows = await conn.execute(
        text(
            """
            SELECT i.relname, pg_get_indexdef(x.indexrelid)
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            WHERE x.indrelid = CAST(:table AS regclass)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
            ORDER BY i.relname
            """
        ),
        {"table": table},
    )
    return [(r[0], r[1]) for r in rows]


async def _bases(conn: AsyncConnection, run: _Run) -> dict[str, int]:
    """Where this run's ids start, and how many rows each table holds now."""
    row = (
        await conn.execute(
            text(
                """
                SELECT (SELECT coalesce(max(id), 0) FROM students),
                       (SELECT coalesce(max(id), 0) FROM support_tickets),
                       (SELECT coalesce(max(id), 0) FROM support_messages),
                       (SELECT coalesce(max(id), 0) FROM notifications),
                       (SELECT coalesce(max(id), 0) FROM appointments),
                       (SELECT min(id) FROM counselors WHERE is_active),
                       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                """
            )
        )
    ).one()
    run.student_base, run.ticket_base, run.message_base, run.notification_base = row[:4]
    run.appointment_base = row[4]
    run.fallback_counselor, run.superuser = row[5], bool(row[6])
    sizes = await conn.execute(
        text(
            "SELECT relname, greatest(reltuples, 0)::bigint FROM pg_class "
            "WHERE relname = ANY(:names) AND relkind = 'r'"
        ),
        {"names": list(TABLES)},
    )
    return {name: int(n) for name, n in sizes}


def check_counts(counts: Counts) -> None:
    if min(counts.students, counts.tickets, counts.messages, counts.appointments) < 0:
        raise ValueError("counts cannot be negative")
    if counts.tickets and counts.messages < counts.tickets:
        raise ValueError("every ticket has at least one message: --messages >= --tickets")
    if counts.messages and not counts.tickets:
        raise ValueError("messages belong to tickets: give --tickets too")


async def generate(
    engine: AsyncEngine,
    counts: Counts,
    report: Report,
    *,
    tz: str = "Africa/Nairobi",
    booking_days: int = 30,
    rebuild_exclusion: bool = False,
) -> None:
    """Add `counts` students, tickets, messages and appointments (on top of whatever the
    database holds). Appointments are wall-clock hours in `tz`, up to `booking_days` ahead.

    `rebuild_exclusion`: drop the appointments' exclusion constraints for the load and add them
    back after. Off by default: measured at 1M appointments on this 2-core machine, adding
    both back (one at a time: each locks the table) took 83 s against 102 s for inserting with
    them in place on two connections — 104 s against 118 s in all, not worth a table that is
    unguarded while it loads."""
    check_counts(counts)
    run = _Run(engine=engine, report=report, counts=counts, tz=tz, booking_days=booking_days)
    async with engine.connect() as probe:
        sizes = await _bases(probe, run)
    if counts.tickets and run.fallback_counselor is None:
        raise ValueError("tickets need counselors: load the demo data first")
    adding = {
        "students": counts.students,
        "support_tickets": counts.tickets,
        "support_messages": counts.messages,
        "notifications": counts.messages // 10,
        "support_ticket_reads": counts.tickets,
        "appointments": counts.appointments,
    }
    touched = [t for t in TABLES if adding[t]]
    # Rebuilding an index costs a sort of the whole table; worth it when the table more than
    # doubles, far from it when a few rows join millions.
    rebuild = [t for t in touched if adding[t] > max(sizes.get(t, 0), 10_000)]
    main = await _connect(run)
    dropped: list[tuple[str, str]] = []
    exclusions: list[tuple[str, str]] = []
    recounted = False
    try:
        for table in touched:
            await main.exec_driver_sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        for table in rebuild:
            for name, ddl in await _secondary_indexes(main, table):
                await main.exec_driver_sql(f'DROP INDEX "{name}"')
                dropped.append((name, ddl))
        if dropped:
            run.say(f"dropped {len(dropped)} secondary indexes, to rebuild after the load")
        if counts.appointments and rebuild_exclusion:
            for name, definition in await _exclusion_constraints(main, "appointments"):
                await main.exec_driver_sql(f'ALTER TABLE appointments DROP CONSTRAINT "{name}"')
                exclusions.append((name, definition))
            run.say(f"dropped {len(exclusions)} exclusion constraints, to add back after")

        if counts.students:
            await _parallel(
                run,
                [_students_job(run, lo, hi) for lo, hi in _ranges(counts.students, STUDENT_CHUNK)],
            )
        if counts.tickets:
            await _build_pool(main, run)
            await _build_people(main, run)
            if run.people == 0:
                raise ValueError("tickets need students: add --students")
            await _build_plan(main, run)
            run.say("planned tickets and message counts")
            await _parallel(
                run, [_tickets_job(run, lo, hi) for lo, hi in _ranges(counts.tickets, TICKET_CHUNK)]
            )
            per_chunk = max(1, math.ceil(counts.tickets * MESSAGE_CHUNK / counts.messages))
            done = [0]
            await _parallel(
                run,
                [_messages_job(run, lo, hi, done) for lo, hi in _ranges(counts.tickets, per_chunk)],
            )
        if counts.appointments:
            await _add_appointments(main, run)
    finally:
        for table in run.temp_tables:
            await main.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        # The constraints first: adding one back checks every row, so a broken construction
        # fails here, loudly, instead of leaving an unconstrained table.
        for name, definition in exclusions:
            started = time.monotonic()
            await main.exec_driver_sql(
                f'ALTER TABLE appointments ADD CONSTRAINT "{name}" {definition}'
            )
            run.say(f"constraint {name} added back in {time.monotonic() - started:.1f}s")
        if dropped:
            run.say(f"rebuilding {len(dropped)} indexes")
            await _parallel(run, [_index_job(run, name, ddl) for name, ddl in dropped])
        for table in touched:
            await main.exec_driver_sql(f"ALTER TABLE {table} RESET (autovacuum_enabled)")
        await main.close()
        if counts.tickets and run.superuser:
            # The tickets went in with triggers off (replica role), the count's included; even
            # after a failed run, those that did go in must be counted.
            async with engine.begin() as conn:
                await recount_activity_days(conn)
            recounted = True
            run.say("counted the tickets of each inbox view per day (for page=N)")

    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("students", "support_tickets", "support_messages", "notifications"):
            await conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence(:t, 'id'), "
                    f"greatest((SELECT max(id) FROM {table}), 1))"
                ),
                {"t": table},
            )
        # The sequence of appointments is used by the service (and moves past ours).
        await conn.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('appointments', 'id'), "
            "greatest((SELECT max(id) FROM appointments), 1))"
        )
    run.say("vacuum and analyze")
    extra = ["counselors", "counselor_working_hours"] if counts.appointments else []
    if recounted:  # refilled from scratch (see vacuum_activity_days)
        extra.append(support_ticket_activity_days.name)
    await _parallel(run, [_vacuum_job(run, table) for table in [*touched, *extra]])
    run.say("done")


async def _add_appointments(main: AsyncConnection, run: _Run) -> None:
    from counseldesk.demo import DEMO_PASSWORD
    from counseldesk.staff.passwords import hash_password

    count = run.counts.appointments
    shape = appointment_shape(count)
    run.people = await _appointment_clients(main, run)
    needed = _min_clients(shape.counselors)
    if run.people < needed:
        raise ValueError(
            f"{count:,} appointments need at least {needed:,} students without appointments "
            f"(there are {run.people:,}): add --students"
        )
    # Bulk counselors can log in with the demo password, e.g. to see their own calendar.
    await _appointment_staff(main, run, shape, await hash_password(DEMO_PASSWORD))
    now = (await main.execute(text("SELECT now()"))).scalar_one()
    planned = await _plan_appointments(main, run, shape, now)
    if planned < count:  # more than the hours can hold: appointment_shape is wrong
        raise ValueError(f"only {planned:,} free hours for {count:,} appointments")
    run.say(
        f"planned {planned:,} appointments: {shape.counselors} counselors, "
        f"{shape.past_days} days back and {run.booking_days} ahead"
    )
    done = [0]
    await _parallel(
        run,
        [
            _appointments_job(run, lo, hi, now, shape, done)
            for lo, hi in _ranges(count, APPOINTMENT_CHUNK)
        ],
    )


def _index_job(run: _Run, name: str, ddl: str) -> Job:
    async def job(conn: AsyncConnection) -> None:
        started = time.monotonic()
        await conn.exec_driver_sql(ddl)
        run.say(f"index {name} rebuilt in {time.monotonic() - started:.1f}s")

    return job


def _vacuum_job(run: _Run, table: str) -> Job:
    async def job(conn: AsyncConnection) -> None:
        # VACUUM also sets the visibility map, without which "index-only" scans visit the heap.
        await conn.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
        run.say(f"vacuumed {table}")

    return job
