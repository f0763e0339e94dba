"""What the bot remembers of a booking between updates (FSM data), and its one typed step.

The chosen counselor, time and reason live under one key of the FSM data, beside whatever other
features keep there (the support chat's active conversation), so nothing here may clear the
whole state. Only the reason is typed: it is the one FSM state of ours, and every other step is
a button, so a student who walks away from a booking half-way still reaches the support chat
with what they type next.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup

DRAFT_KEY = "appointment_draft"


class Booking(StatesGroup):
    reason = State()


@dataclass(frozen=True)
class Draft:
    counselor_id: int  # keyboards.FIRST_AVAILABLE: whoever is free
    at: int  # epoch seconds of the slot's start
    move: int = 0  # the appointment being rescheduled; 0: a new booking
    reason: str | None = None  # None: not asked yet; "": skipped

    @property
    def starts_at(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)

    def with_(self, **changes: Any) -> Draft:
        return replace(self, **changes)

    @classmethod
    def from_data(cls, data: object) -> Draft | None:
        if not isinstance(data, dict):
            return None
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError:  # saved by a version with other required fields: start over
            return None


async def get_draft(state: FSMContext) -> Draft | None:
    return Draft.from_data((await state.get_data()).get(DRAFT_KEY))


async def save_draft(state: FSMContext, draft: Draft, step: State | None = None) -> None:
    await state.update_data({DRAFT_KEY: asdict(draft)})
    await state.set_state(step)


async def end_draft(state: FSMContext) -> None:
    """Forget the booking and leave our state; other features' data stays."""
    data = await state.get_data()
    if data.pop(DRAFT_KEY, None) is not None:
        await state.set_data(data)
    if await state.get_state() == Booking.reason.state:
        await state.set_state(None)
