"""Counselor accounts: creation, login, passwords, profile. The rules live here; the JSON API, the
dashboard pages and the CLI all call these functions. They flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from counseldesk.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from counseldesk.staff import passwords
from counseldesk.staff.login_limiter import LoginLimiter, limiter_key
from counseldesk.staff.models import Counselor, Role
from counseldesk.staff.sessions import SessionStore

MIN_PASSWORD_LENGTH = 8
# argon2 accepts any length; the cap only stops megabyte "passwords" from costing hashing time.
MAX_PASSWORD_LENGTH = 256
MAX_NAME_LENGTH = 120
# One message for unknown email, wrong password and deactivated account: which part was wrong
# is exactly what someone guessing accounts wants to learn.
INVALID_CREDENTIALS = "Invalid email or password."
WRONG_CURRENT_PASSWORD = "Your current password is not correct."  # noqa: S105 - a message


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_email(email: str) -> str:
    """Return the normalized address, or raise InvalidInput saying what is wrong with it."""
    normalized = normalize_email(email)
    try:
        validate_email(normalized, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"Invalid email address: {exc}") from exc
    return normalized


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"The password must be at most {MAX_PASSWORD_LENGTH} characters long.")


def check_full_name(full_name: str) -> str:
    name = " ".join(full_name.split())
    if not name:
        raise InvalidInput("The full name must not be empty.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"The full name must be at most {MAX_NAME_LENGTH} characters long.")
    return name


# --- lookups -----------------------------------------------------------------------------------


async def get_counselor(session: AsyncSession, counselor_id: int) -> Counselor:
    counselor = await session.get(Counselor, counselor_id)
    if counselor is None:
        raise NotFound(f"Counselor {counselor_id} does not exist.")
    return counselor


async def find_counselor_by_email(session: AsyncSession, email: str) -> Counselor | None:
    result = await session.execute(
        select(Counselor).where(Counselor.email == normalize_email(email))
    )
    return result.scalar_one_or_none()


async def list_counselors(session: AsyncSession) -> Sequence[Counselor]:
    """Every counselor, active ones first, by name (the office has tens, not thousands)."""
    result = await session.execute(
        select(Counselor).order_by(Counselor.is_active.desc(), Counselor.full_name, Counselor.id)
    )
    return result.scalars().all()


async def count_active_counselors(session: AsyncSession) -> int:
    result = await session.execute(
        select(func.count()).select_from(Counselor).where(Counselor.is_active)
    )
    return int(result.scalar_one())


# --- accounts ----------------------------------------------------------------------------------


async def create_counselor(
    session: AsyncSession,
    *,
    email: str,
    full_name: str,
    password: str,
    role: Role = Role.COUNSELOR,
) -> Counselor:
    """Create an active account. InvalidInput for a bad email, name or password (under 8
    characters); Conflict when the email (compared case-insensitively) is taken."""
    normalized = check_email(email)
    name = check_full_name(full_name)
    check_password(password)
    counselor = Counselor(
        email=normalized,
        full_name=name,
        password_hash=await passwords.hash_password(password),
        role=role,
        is_active=True,
    )
    # The unique constraint is the real duplicate check (two concurrent creates both pass any
    # SELECT first); the savepoint keeps the caller's transaction usable after it fires.
    try:
        async with session.begin_nested():
            session.add(counselor)
    except IntegrityError as exc:
        if "uq_counselors_email" not in str(exc.orig):
            raise
        raise Conflict(f"A counselor with the email {normalized} already exists.") from exc
    return counselor


async def update_profile(
    session: AsyncSession, counselor: Counselor, *, full_name: str
) -> Counselor:
    counselor.full_name = check_full_name(full_name)
    await session.flush()
    return counselor


async def set_active(
    session: AsyncSession,
    counselor: Counselor,
    *,
    active: bool,
    sessions: SessionStore | None = None,
) -> Counselor:
    """Activate or deactivate an account. A deactivated counselor is refused on their very next
    request anyway (every request checks `is_active`); passing `sessions` also deletes them."""
    counselor.is_active = active
    await session.flush()
    if not active and sessions is not None:
        await sessions.delete_all(counselor.id)
    return counselor


# --- passwords and login -----------------------------------------------------------------------


async def authenticate(session: AsyncSession, *, email: str, password: str) -> Counselor:
    """The active counselor with these credentials, or NotAuthenticated(INVALID_CREDENTIALS).

    Upgrades the stored hash when the hashing parameters changed since it was made.
    """
    counselor = await find_counselor_by_email(session, email)
    if counselor is None:
        await passwords.burn_verification_time(password)
        raise NotAuthenticated(INVALID_CREDENTIALS)
    # Verify even for a deactivated account, so its answer takes as long as any other.
    matches = await passwords.verify_password(counselor.password_hash, password)
    if not matches or not counselor.is_active:
        raise NotAuthenticated(INVALID_CREDENTIALS)
    if passwords.needs_rehash(counselor.password_hash):
        counselor.password_hash = await passwords.hash_password(password)
    counselor.last_login_at = datetime.now(UTC)
    await session.flush()
    return counselor


async def log_in(
    session: AsyncSession,
    limiter: LoginLimiter,
    *,
    email: str,
    password: str,
    client_address: str,
) -> Counselor:
    """`authenticate`, rate-limited per (email, client address).

    TooManyRequests once the failures in the window are used up; this is checked before the
    password, so a right guess after the limit is refused too. Success clears the count.
    """
    key = limiter_key("login", normalize_email(email), client_address)
    await limiter.check(key)
    try:
        counselor = await authenticate(session, email=email, password=password)
    except NotAuthenticated:
        await limiter.record_failure(key)
        raise
    await limiter.reset(key)
    return counselor


async def change_password(
    session: AsyncSession,
    counselor: Counselor,
    current: str,
    new: str,
    *,
    limiter: LoginLimiter | None = None,
    sessions: SessionStore | None = None,
    keep_session: str | None = None,
) -> None:
    """Replace the password after checking the current one (InvalidInput when it is wrong or the
    new one is too short).

    With `limiter`, wrong current passwords count like failed logins, so a borrowed session cannot
    be used to guess the password. With `sessions`, every other session of the counselor ends
    (all but the token `keep_session`): whoever else knew the old password is logged out.
    """
    key = limiter_key("change-password", counselor.id)
    if limiter is not None:
        await limiter.check(key)
    if not await passwords.verify_password(counselor.password_hash, current):
        if limiter is not None:
            await limiter.record_failure(key)
        raise InvalidInput(WRONG_CURRENT_PASSWORD)
    check_password(new)
    if limiter is not None:
        await limiter.reset(key)
    await set_password(session, counselor, new, sessions=sessions, keep_session=keep_session)


async def set_password(
    session: AsyncSession,
    counselor: Counselor,
    new: str,
    *,
    sessions: SessionStore | None = None,
    keep_session: str | None = None,
) -> None:
    """Set a password without knowing the old one (an administrator's reset, the CLI)."""
    check_password(new)
    counselor.password_hash = await passwords.hash_password(new)
    await session.flush()
    if sessions is not None:
        await sessions.delete_all(counselor.id, keep=keep_session)
