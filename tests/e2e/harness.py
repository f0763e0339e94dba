"""Drive the real bot (dispatcher, middlewares, storage, database) through the Telegram emulator,
one student action at a time, and read back what the bot sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot, Dispatcher

from counseldesk.db.engine import Database
from counseldesk.telegram.emulator import EmulatorServer
from counseldesk.telegram.outbox_worker import OutboxWorker


@dataclass
class Student:
    """A simulated Telegram user and the bot's replies they have not looked at yet."""

    harness: BotHarness
    user_id: int
    seen_seq: int = 0
    replies: list[dict[str, Any]] = field(default_factory=list)

    async def say(self, text: str, *, reply_to: int | None = None) -> list[dict[str, Any]]:
        self.harness.state.user_sends_text(self.user_id, text, reply_to_message_id=reply_to)
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

    async def press_data(
        self, data: str, *, message_id: int | None = None, force: bool = False
    ) -> list[dict[str, Any]]:
        """Press a button by its callback data; with `force`, data no button shows (a forged
        press from a modified client). Pressed on the newest bot message unless told which."""
        if message_id is None:
            message_id = self.bot_messages()[-1]["message_id"]
        self.harness.state.user_presses_button(self.user_id, message_id, data, force=force)
        return await self._handled()

    async def send_photo(self, caption: str | None = None) -> list[dict[str, Any]]:
        self.harness.state.user_sends_media(
            self.user_id,
            "photo",
            b"\x89PNG\r\n\x1a\n" + b"\0" * 32,
            file_name="p.png",
            caption=caption,
        )
        return await self._handled()

    async def send_document(
        self,
        file_name: str = "notes.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
    ) -> list[dict[str, Any]]:
        self.harness.state.user_sends_media(
            self.user_id,
            "document",
            b"%PDF-1.4 test",
            file_name=file_name,
            mime_type=mime_type,
            caption=caption,
        )
        return await self._handled()

    async def send_voice(self, duration: int = 3) -> list[dict[str, Any]]:
        self.harness.state.user_sends_media(
            self.user_id, "voice", b"OggS" + b"\0" * 32, duration=duration
        )
        return await self._handled()

    def last_callback_answer(self) -> str | None:
        """The text the bot answered the newest button press with (a toast), if any."""
        for entry in reversed(self.harness.state.chat_feed(self.user_id)["entries"]):
            if entry["type"] == "callback":
                assert entry["answered"], "the bot did not answer the button press"
                text: str | None = entry["answer"].get("text")
                return text
        raise AssertionError("no button was pressed")

    def button_labels(self) -> list[str]:
        """The inline buttons of the newest bot message."""
        return buttons(self.bot_messages()[-1])

    def last_file_id(self) -> str:
        """Telegram's file id of the newest file this student sent."""
        for entry in reversed(self.harness.state.chat_feed(self.user_id)["entries"]):
            if entry["type"] == "message" and entry["direction"] == "in" and entry.get("media"):
                file_id: str = entry["media"]["file_id"]
                return file_id
        raise AssertionError("the student sent no file")

    async def received(self) -> list[dict[str, Any]]:
        """What the bot sent since the student last looked (e.g. delivered from the outbox)."""
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


async def deliver_outbox(harness: BotHarness, db: Database) -> int:
    """One round of the real outbox worker against the emulator: what is pending now reaches
    the students' chats. Returns how many messages were sent.

    Bot tests run inside one rolled-back connection, which cannot carry several sessions at once:
    one send at a time, and a test lets one chat's rows pile up per round.
    """
    worker = OutboxWorker(db, harness.bot, listen=False, max_in_flight=1)
    return (await worker.run_once()).sent


def texts(entries: list[dict[str, Any]]) -> list[str]:
    return [e["text"] or "" for e in entries]


def buttons(entry: dict[str, Any]) -> list[str]:
    markup = entry.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]
