"""Drive the real bot (dispatcher, middlewares, storage, database) through the Telegram emulator,
one student action at a time, and read back what the bot sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot, Dispatcher

from counseldesk.telegram.emulator import EmulatorServer


@dataclass
class Student:
    """A simulated Telegram user and the bot's replies they have not looked at yet."""

    harness: BotHarness
    user_id: int
    seen_seq: int = 0
    replies: list[dict[str, Any]] = field(default_factory=list)

    async def say(self, text: str) -> list[dict[str, Any]]:
        self.harness.state.user_sends_text(self.user_id, text)
        return await self._handled()

    async def share_contact(
        self, phone: str, *, of_user: int | None = None
    ) -> list[dict[str, Any]]:
        self.harness.state.user_shares_contact(self.user_id, phone, contact_user_id=of_user)
        return await self._handled()

    async def press(self, label: str) -> list[dict[str, Any]]:
        """Press the inline button with this label on the newest bot message that shows it."""
        for message in reversed(self.bot_messages()):
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if button["text"] == label:
                        self.harness.state.user_presses_button(
                            self.user_id, message["message_id"], button["callback_data"]
                        )
                        return await self._handled()
        raise AssertionError(f"no button {label!r} in the chat")

    async def send_photo(self) -> list[dict[str, Any]]:
        self.harness.state.user_sends_media(
            self.user_id, "photo", b"\x89PNG\r\n\x1a\n" + b"\0" * 32, file_name="p.png"
        )
        return await self._handled()

    def bot_messages(self) -> list[dict[str, Any]]:
        feed = self.harness.state.chat_feed(self.user_id)
        entries = sorted(feed["entries"], key=lambda e: e["first_seq"])
        return [
            e
            for e in entries
            if e["type"] == "message" and e["direction"] == "out" and not e["deleted"]
        ]

    def reply_keyboard(self) -> dict[str, Any] | None:
        keyboard: dict[str, Any] | None = self.harness.state.chat_feed(self.user_id)[
            "reply_keyboard"
        ]
        return keyboard

    async def _handled(self) -> list[dict[str, Any]]:
        await self.harness.pump()
        feed = self.harness.state.chat_feed(self.user_id, after=self.seen_seq)
        self.seen_seq = feed["last_seq"]
        new = [
            e
            for e in sorted(feed["entries"], key=lambda e: e["seq"])
            if e["type"] == "message" and e["direction"] == "out" and not e["deleted"]
        ]
        self.replies = new
        return new


class BotHarness:
    def __init__(self, emulator: EmulatorServer, bot: Bot, dispatcher: Dispatcher) -> None:
        self.emulator = emulator
        self.state = emulator.state
        self.bot = bot
        self.dispatcher = dispatcher
        self.offset: int | None = None

    def student(self, user_id: int | None = None, first_name: str = "Test") -> Student:
        user = self.state.create_user(user_id=user_id, first_name=first_name, language_code="en")
        return Student(self, user.id)

    async def pump(self) -> int:
        """Fetch pending updates with getUpdates (as polling does) and handle each, in order."""
        handled = 0
        while True:
            updates = await self.bot.get_updates(offset=self.offset, timeout=0)
            if not updates:
                return handled
            for update in updates:
                await self.dispatcher.feed_update(self.bot, update)
                self.offset = update.update_id + 1
                handled += 1


def texts(entries: list[dict[str, Any]]) -> list[str]:
    return [e["text"] or "" for e in entries]


def buttons(entry: dict[str, Any]) -> list[str]:
    markup = entry.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]
