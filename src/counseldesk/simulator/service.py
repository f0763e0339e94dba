"""Which students the simulator offers, and the emulator's data as the browser needs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import UploadFile
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.errors import CounseldeskError, NotFound
from counseldesk.simulator.client import EmulatorClient, EmulatorRefused
from counseldesk.students import service as students
from counseldesk.students.models import Student

# The demo students (counseldesk.demo.STUDENTS) have Telegram ids in this range, which real
# accounts do not use, so the simulator can speak as them.
DEMO_TELEGRAM_IDS = range(700_000_001, 700_000_100)
# The page lists the demo students plus whoever is in the emulator: that is every student an
# administrator can chat as, without listing a whole (possibly huge) students table. A load test
# may leave thousands of users in the emulator; the newest ones are the interesting ones.
MAX_EMULATOR_USERS = 100
FILES_URL = "/simulator/api/files/"
# Telegram lets a bot download files up to 20 MB: a bigger upload could never reach the bot.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class PayloadTooLarge(CounseldeskError):
    status_code = 413


@dataclass(frozen=True)
class SimulatedStudent:
    telegram_user_id: int
    name: str
    username: str | None
    in_emulator: bool
    registered: bool
    admission_no: str | None
    year_of_study: int | None


def _emulator_name(user: dict[str, Any]) -> str:
    return " ".join(part for part in (user.get("first_name"), user.get("last_name")) if part)


async def list_simulated_students(
    session: AsyncSession, emulator_users: list[dict[str, Any]]
) -> list[SimulatedStudent]:
    """New test students (newest first), then the demo students in id order, whether or not
    they are in the emulator yet: picking one must not make it jump to another place."""
    newest = {int(user["id"]): user for user in reversed(emulator_users[-MAX_EMULATOR_USERS:])}
    rows = await session.scalars(
        select(Student).where(
            or_(
                Student.telegram_user_id.between(DEMO_TELEGRAM_IDS[0], DEMO_TELEGRAM_IDS[-1]),
                Student.telegram_user_id.in_(list(newest)),
            )
        )
    )
    registered = {student.telegram_user_id: student for student in rows}
    demo = sorted({uid for uid in (*newest, *registered) if uid in DEMO_TELEGRAM_IDS})
    others = [uid for uid in newest if uid not in DEMO_TELEGRAM_IDS]
    return [_listed(uid, newest.get(uid), registered.get(uid)) for uid in (*others, *demo)]


def _listed(uid: int, user: dict[str, Any] | None, student: Student | None) -> SimulatedStudent:
    return SimulatedStudent(
        telegram_user_id=uid,
        name=student.full_name if student else _emulator_name(user or {}),
        username=user.get("username") if user else None,
        in_emulator=user is not None,
        registered=student is not None,
        admission_no=student.admission_no if student else None,
        year_of_study=student.year_of_study if student else None,
    )


async def do_open_in_emulator(
    session: AsyncSession, emulator: EmulatorClient, telegram_user_id: int
) -> dict[str, Any]:
    """The emulator's user with this id; a registered student missing from the emulator (the
    demo students, anyone after an emulator restart) is added to it under the same id."""
    user = await emulator.get_user(telegram_user_id)
    if user is not None:
        return user
    student = await students.get_by_telegram_id(session, telegram_user_id)
    if student is None:
        raise NotFound(
            f"There is no test student with Telegram id {telegram_user_id}. "
            "Create a new test student instead."
        )
    first_name, _, last_name = student.full_name.partition(" ")
    try:
        return await emulator.create_user(
            user_id=telegram_user_id,
            first_name=first_name,
            last_name=last_name or None,
            language_code=student.language_code,
        )
    except EmulatorRefused as exc:
        if exc.status_code != 409:
            raise
    # Another tab added it between our two calls.
    user = await emulator.get_user(telegram_user_id)
    if user is None:
        raise NotFound(f"The emulator lost user {telegram_user_id}; try again.")
    return user


def feed_for_browser(feed: dict[str, Any]) -> dict[str, Any]:
    """The emulator's chat feed with file links pointing at the dashboard's file proxy (the
    browser cannot, and should not, reach the emulator itself)."""
    for entry in feed.get("entries", []):
        media = entry.get("media")
        if isinstance(media, dict) and media.get("file_id"):
            media["url"] = FILES_URL + str(media["file_id"])
    return feed


async def read_upload(file: UploadFile) -> bytes:
    content = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        raise PayloadTooLarge("The file is larger than 20 MB, more than a bot may download.")
    return content
