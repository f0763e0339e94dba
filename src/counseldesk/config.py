"""The one place counseldesk reads its configuration from.

Every field is an environment variable of the same name in upper case (``DATABASE_URL``,
``PORT``...), or a line in a ``.env`` file in the working directory. The README lists them all.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A token in the shape Telegram issues, used to talk to the built-in emulator. It is no secret: the
# emulator accepts any token and never leaves loopback.
EMULATOR_BOT_TOKEN = "1000000001:counseldesk-emulator-token"  # noqa: S105


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # --- storage -------------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://user:pass@host:5432/db). Unset: an embedded "
        "PostgreSQL is started under VAR_DIR.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL. Unset: sessions live in PostgreSQL, rate limits and bot state "
        "in-process/PostgreSQL (single instance only).",
    )
    var_dir: Path = Field(
        default=Path("var"), description="Where the embedded PostgreSQL and runtime files live."
    )
    db_pool_max: int = Field(
        default=20,
        ge=1,
        description="Most connections the pool opens; it keeps those it opened for reuse.",
    )
    db_connection_max_age: float = Field(
        default=1800.0,
        ge=1,
        description=(
            "Seconds after which a pooled connection is replaced on its next checkout; each"
            " connection gets an age between three quarters of this and all of it."
        ),
    )
    db_connect_timeout: float = Field(
        default=2.0, gt=0, description="Seconds to wait while opening a new database connection."
    )
    db_pool_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a request waits for a free pooled connection."
    )

    # --- web ---------------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Address the web server binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port of the web server (0: any).")
    web_processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Processes `counseldesk web` runs on the one port (about one per core).",
    )
    cookie_secure: bool = Field(
        default=False, description="Send cookies only over HTTPS (set true behind TLS)."
    )
    session_idle_hours: float = Field(
        default=12.0, gt=0, description="A dashboard session ends after this long without use."
    )
    staff_identity_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How long a web process remembers who a session belongs to. Logout, "
        "password changes and deactivations are seen at once by the process that made them, "
        "by other processes within this time. 0: look the session up on every request.",
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed logins per email and address before a pause."
    )
    login_window_seconds: int = Field(
        default=900, ge=1, description="Window over which failed logins are counted."
    )

    # --- telegram ----------------------------------------------------------------------------
    telegram_bot_token: SecretStr | None = Field(
        default=None, description="Bot token from @BotFather. Unset: the built-in emulator is used."
    )
    telegram_api_url: str = Field(
        default="https://api.telegram.org", description="Bot API server for a real token."
    )
    emulator_host: str = Field(default="127.0.0.1", description="Address of the emulator.")
    emulator_port: int = Field(
        default=8081, ge=0, le=65535, description="Port of the emulator (0: any free port)."
    )
    webhook_url: str | None = Field(
        default=None,
        description="Public HTTPS URL of /telegram/webhook. Set: the bot uses a webhook; "
        "unset: long polling.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Secret Telegram echoes in X-Telegram-Bot-Api-Secret-Token; required with "
        "WEBHOOK_URL.",
    )

    # --- office ------------------------------------------------------------------------------
    office_timezone: str = Field(
        default="Africa/Nairobi", description="IANA time zone the office works in."
    )

    appointment_reminders: str = Field(
        default="1440,60",
        description="When students are reminded of an appointment: minutes before its start, "
        "comma-separated (default a day and an hour before). Empty: no reminders.",
    )
    appointment_max_upcoming: int = Field(
        default=3,
        ge=1,
        le=50,
        description="Upcoming appointments one student may hold at a time (stops hoarding).",
    )
    appointment_booking_days: int = Field(
        default=30, ge=1, le=365, description="How many days ahead students may book."
    )
    appointment_min_notice_minutes: int = Field(
        default=60,
        ge=0,
        le=10080,
        description="A slot can be booked (or a booking moved to it) until this many minutes "
        "before it starts.",
    )

    # --- logging -----------------------------------------------------------------------------
    log_level: str = Field(default="INFO", description="Python logging level.")

    # --- outbox ------------------------------------------------------------------------------
    outbox_rate_per_second: float = Field(
        default=25.0,
        gt=0,
        description="Messages per second the worker sends to Telegram, all workers together "
        "(shared through Redis when REDIS_URL is set). Telegram refuses bursts above about 30.",
    )
    outbox_batch_size: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Due notifications a worker claims at a time.",
    )

    @field_validator("office_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("appointment_reminders")
    @classmethod
    def _check_reminders(cls, value: str) -> str:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if not all(part.isdigit() and 0 < int(part) <= 60 * 24 * 30 for part in parts):
            raise ValueError("a comma-separated list of minutes between 1 and 43200")
        return ",".join(parts)

    @property
    def reminder_offsets(self) -> tuple[int, ...]:
        """Minutes before an appointment when its reminders go out, largest first."""
        if not self.appointment_reminders:
            return ()
        return tuple(sorted({int(p) for p in self.appointment_reminders.split(",")}, reverse=True))

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("WEBHOOK_SECRET is required when WEBHOOK_URL is set")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.office_timezone)

    @property
    def uses_emulator(self) -> bool:
        return self.telegram_bot_token is None

    @property
    def bot_token(self) -> str:
        if self.telegram_bot_token is None:
            return EMULATOR_BOT_TOKEN
        return self.telegram_bot_token.get_secret_value()

    @property
    def emulator_url(self) -> str:
        return f"http://{self.emulator_host}:{self.emulator_port}"

    @property
    def bot_api_url(self) -> str:
        return self.emulator_url if self.uses_emulator else self.telegram_api_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
