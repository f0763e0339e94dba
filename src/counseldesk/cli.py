"""`counseldesk` command line: run the system, migrate, manage counselors, load data."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from counseldesk.config import Settings, get_settings
from counseldesk.db import migrate as migrations
from counseldesk.errors import CounseldeskError
from counseldesk.runtime import Runtime, database_url

app = typer.Typer(
    help="counseldesk: a counseling office's Telegram bot, dashboard and worker.",
    no_args_is_help=True,
    add_completion=False,
)

T = TypeVar("T")


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # aiogram logs every handled update at INFO; that is noise at our volumes.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    # pgserver narrates every pg_ctl call at INFO; httpx every request (the emulator's long polls
    # and the simulator's calls: hundreds a minute that would bury what matters).
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for old, now in RETIRED_SETTINGS.items():
        if old in os.environ:
            logging.getLogger("counseldesk").warning("%s is no longer read: %s", old, now)


# Settings that were renamed or removed, and what to set instead; ignored, but named at start.
RETIRED_SETTINGS = {
    "DB_POOL_MIN": "the pool keeps every connection it opens, up to DB_POOL_MAX",
    "DB_IDLE_TIMEOUT": "use DB_CONNECTION_MAX_AGE (seconds a connection is reused)",
}


def _run_async(main: Callable[[Runtime], Awaitable[T]], *, migrate_first: bool = False) -> T:
    """Resolve the database (starting the embedded one if needed), run `main`, clean up."""
    settings = get_settings()
    _setup_logging(settings)
    with database_url(settings) as url:
        if migrate_first:
            migrations.upgrade(url)
        return _run_loop(settings, url, main)


def _run_loop(settings: Settings, url: str, main: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run `main` with a Runtime of its own in a new event loop (uvloop when available)."""

    async def runner() -> T:
        runtime = Runtime.open(settings, url)
        try:
            return await main(runtime)
        finally:
            await runtime.close()

    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard] on Linux
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as loop_runner:
        return loop_runner.run(runner())


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@app.command()
def serve(
    demo: Annotated[
        bool, typer.Option(help="Load demo data on first start (an empty database).")
    ] = False,
) -> None:
    """Everything in one process, for development: web, bot, worker (and the emulator)."""
    from counseldesk.demo import (
        DEMO_ADMIN_EMAIL,
        DEMO_PASSWORD,
        introduce_to_emulator,
        load_demo_data,
    )
    from counseldesk.serve import Parts, System, run_parts

    async def main(runtime: Runtime) -> None:
        settings = runtime.settings
        if demo:
            async with runtime.db.unit_of_work() as session:
                created = await load_demo_data(session, tz=settings.tz)
            if created:
                typer.echo("Loaded demo data (counselors, categories, students, appointments).")
        parts = Parts(web=True, bot_polling=True, worker=True, emulator=settings.uses_emulator)

        def on_started(system: System) -> None:
            if demo and system.emulator is not None:
                introduce_to_emulator(system.emulator.state)
            lines = ["", f"  counseldesk dashboard:  {system.web_url}"]
            if demo:
                lines.append(f"  demo login:             {DEMO_ADMIN_EMAIL} / {DEMO_PASSWORD}")
            if system.emulator is not None:
                lines.append(
                    "  bot:                    built-in Telegram emulator — open "
                    "Student simulator in the dashboard to chat with it"
                )
            lines += ["  stop:                   Ctrl-C", ""]
            typer.echo("\n".join(lines))

        await run_parts(runtime, parts, on_started=on_started)

    _run_async(main, migrate_first=True)


@app.command()
def web() -> None:
    """The dashboard, JSON API and (with WEBHOOK_URL) the Telegram webhook; WEB_PROCESSES copies
    of it share the port."""
    from counseldesk.serve import Parts, run_parts

    settings = get_settings()
    if settings.web_processes == 1:
        _run_async(lambda runtime: run_parts(runtime, Parts(web=True)))
        return

    from counseldesk.web.prefork import bind, run_forked

    _setup_logging(settings)
    with database_url(settings) as url:
        sockets = bind(settings.host, settings.port, settings.web_processes)

        def child(listening: socket.socket) -> int:
            _run_loop(
                settings,
                url,
                lambda runtime: run_parts(runtime, Parts(web=True), sockets=[listening]),
            )
            return 0

        code = run_forked(sockets, child)
    if code:
        raise typer.Exit(code)


@app.command()
def bot() -> None:
    """The bot by long polling (use `web` with WEBHOOK_URL for webhook delivery instead)."""
    from counseldesk.serve import Parts, run_parts

    async def main(runtime: Runtime) -> None:
        if runtime.settings.webhook_url:
            _fail("WEBHOOK_URL is set: updates go to `counseldesk web`; unset it to poll.")
        await run_parts(runtime, Parts(bot_polling=True, emulator=runtime.settings.uses_emulator))

    _run_async(main)


@app.command()
def worker() -> None:
    """The outbox sender and the periodic jobs (any number of workers may run)."""
    from counseldesk.serve import Parts, run_parts

    _run_async(lambda runtime: run_parts(runtime, Parts(worker=True)))


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest."""
    settings = get_settings()
    _setup_logging(settings)
    with database_url(settings) as url:
        migrations.upgrade(url)
    typer.echo("Database is up to date.")


@app.command("create-counselor")
def create_counselor(
    email: Annotated[str, typer.Option(help="Login e-mail.")],
    name: Annotated[str, typer.Option(help="Full name shown to students.")],
    password: Annotated[
        str | None,
        typer.Option(help="Password (at least 8 characters); prompted for, or read from stdin."),
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role.")] = False,
) -> None:
    """Create a counselor (or an admin) who can log in to the dashboard."""
    from counseldesk.staff import service as staff
    from counseldesk.staff.models import Role

    if password is None:
        if sys.stdin.isatty():
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        else:
            password = sys.stdin.readline().rstrip("\n")

    async def main(runtime: Runtime) -> str:
        async with runtime.db.unit_of_work() as session:
            counselor = await staff.create_counselor(
                session,
                email=email,
                full_name=name,
                password=password or "",
                role=Role.ADMIN if admin else Role.COUNSELOR,
            )
            return f"Created {counselor.role.value} {counselor.email} (id {counselor.id})."

    try:
        typer.echo(_run_async(main, migrate_first=True))
    except CounseldeskError as exc:
        _fail(exc.message)


@app.command("recount-inbox-days")
def recount_inbox_days() -> None:
    """Count every ticket again into the inbox's counts per day and per 30 days (deep page=N),
    after tickets were written with triggers off. Ticket writes wait while it counts (2M
    tickets: 13-15 s on the benchmark machine)."""
    from counseldesk.support.maintenance import recount_activity_days, vacuum_activity_days

    async def main(runtime: Runtime) -> None:
        async with runtime.db.unit_of_work() as session:
            await recount_activity_days(session)
        async with runtime.db.engine.connect() as conn:
            await vacuum_activity_days(await conn.execution_options(isolation_level="AUTOCOMMIT"))

    _run_async(main, migrate_first=True)
    typer.echo("Counted every ticket again.")


@app.command("demo-data")
def demo_data(
    students: Annotated[
        int | None, typer.Option(min=0, help="Also generate this many students (bulk, in SQL).")
    ] = None,
    tickets: Annotated[
        int | None, typer.Option(min=0, help="Also generate this many support tickets.")
    ] = None,
    messages: Annotated[
        int | None,
        typer.Option(min=0, help="Also generate this many messages (at least one per ticket)."),
    ] = None,
    appointments: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Also generate this many appointments, with counselors and working hours of "
            "their own, for students who have none yet.",
        ),
    ] = None,
) -> None:
    """Load the demo counselors, categories, office details, students and appointments (once).

    With --students/--tickets/--messages/--appointments, also generate that much realistic data
    on top (e.g. 1,000,000 / 2,000,000 / 20,000,000 / 1,000,000 for the benchmark), set-based
    inside PostgreSQL. Each part is optional: `--appointments 1000000` alone adds appointments
    to a database that already holds the students.
    """
    from counseldesk.bulk_data import Counts, check_counts, generate
    from counseldesk.demo import DEMO_ADMIN_EMAIL, DEMO_PASSWORD, load_demo_data

    counts = Counts(
        students=students or 0,
        tickets=tickets or 0,
        messages=messages or 0,
        appointments=appointments or 0,
    )
    try:
        check_counts(counts)
    except ValueError as exc:
        _fail(str(exc))

    async def main(runtime: Runtime) -> bool:
        settings = runtime.settings
        async with runtime.db.unit_of_work() as session:
            loaded = await load_demo_data(session, tz=settings.tz)
        if counts != Counts():
            await generate(
                runtime.db.engine,
                counts,
                lambda line: typer.echo(line),
                tz=settings.office_timezone,
                booking_days=settings.appointment_booking_days,
            )
        return loaded

    try:
        loaded = _run_async(main, migrate_first=True)
    except ValueError as exc:
        _fail(str(exc))
        return
    if loaded:
        typer.echo(f"Demo data loaded. Log in as {DEMO_ADMIN_EMAIL} / {DEMO_PASSWORD}.")
    elif counts == Counts():
        typer.echo("The database already has counselors; demo data was not loaded again.")


@app.command()
def emulator() -> None:
    """Only the Telegram emulator, for running `web` and `bot` as separate processes."""
    from counseldesk.serve import Parts, run_parts

    _run_async(lambda runtime: run_parts(runtime, Parts(emulator=True)))


if __name__ == "__main__":  # pragma: no cover
    app()
