"""What the bot remembers of a student's support conversations between updates (FSM data).

Two things: the active conversation (where everything the student sends goes), and the draft of
a new conversation while the student composes it. Both live in the FSM storage (Redis, or
PostgreSQL in the update's own transaction), so a restart or a second bot instance keeps them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup

from counseldesk.support.service import Media

ACTIVE_KEY = "active_ticket_id"
DRAFT_KEY = "support_draft"


class Composing(StatesGroup):
    """The steps of a new conversation; any other state (or none) is not ours."""

    category = State()
    subject = State()
    body = State()
    confirm = State()


@dataclass(frozen=True)
class Draft:
    category_id: int | None = None
    category_name: str | None = None
    subject: str | None = None
    body: str | None = None
    media: Media | None = None
    # The student's Telegram message that became the first message (kept with it).
    message_id: int | None = None
    # Set when the student edits one field from the summary: the next step is the summary again.
    editing: bool = False

    @property
    def complete(self) -> bool:
        return self.subject is not None and (bool(self.body) or self.media is not None)

    def with_(self, **changes: Any) -> Draft:
        return replace(self, **changes)

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data["media"] = asdict(self.media) if self.media else None
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any] | None) -> Draft:
        if not data:
            return cls()
        # Only known fields: a draft saved by an older or newer version still loads.
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        media = values.get("media")
        values["media"] = Media(**media) if isinstance(media, dict) else None
        return cls(**values)


async def get_active(state: FSMContext) -> int | None:
    value = (await state.get_data()).get(ACTIVE_KEY)
    return int(value) if value is not None else None


async def set_active(state: FSMContext, ticket_id: int) -> None:
    await state.update_data({ACTIVE_KEY: ticket_id})


async def forget_active(state: FSMContext) -> None:
    data = await state.get_data()
    if data.pop(ACTIVE_KEY, None) is not None:
        await state.set_data(data)


async def get_draft(state: FSMContext) -> Draft:
    return Draft.from_data((await state.get_data()).get(DRAFT_KEY))


async def save_draft(state: FSMContext, draft: Draft, step: State) -> None:
    await state.update_data({DRAFT_KEY: draft.to_data()})
    await state.set_state(step)


async def end_draft(state: FSMContext, *, active_ticket_id: int | None = None) -> None:
    """Leave the composing steps; the draft is dropped, other data (the active one) kept."""
    data = await state.get_data()
    data.pop(DRAFT_KEY, None)
    if active_ticket_id is not None:
        data[ACTIVE_KEY] = active_ticket_id
    await state.set_data(data)
    await state.set_state(None)
