"""What the emulator remembers about each simulated student and their private chat with the bot.

A chat is both the Bot API's view (messages by message_id, which the bot edits and deletes) and
the simulator's timeline: entries (messages, button presses, chat actions, block/unblock) that
each carry a global `seq`. Any change to an entry gives it a new `seq` and a higher `version`, so
a client that polls "everything after seq N" sees edits, deletions and callback answers as the
updated entry arriving again; `first_seq` never changes and orders the entries for display.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from counseldesk.telegram.emulator.entities import render_html
from counseldesk.telegram.emulator.media import StoredFile

Direction = Literal["in", "out"]
EventKind = Literal["chat_action", "blocked", "unblocked"]


class Signal:
    """Wakes everyone waiting right now; whoever waits later waits for the next fire.

    Waiters check their condition and then call wait() with no await in between, so under asyncio
    no fire can slip through unnoticed.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float | None) -> None:
        """Until the next fire, or at most `seconds` (None: no limit)."""
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)


@dataclass
class SimUser:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_premium: bool = False
    # Telegram refuses to let a bot write first to a user who never opened the chat.
    started: bool = True
    blocked: bool = False

    def to_telegram(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for name in ("last_name", "username", "language_code"):
            if getattr(self, name):
                user[name] = getattr(self, name)
        if self.is_premium:
            user["is_premium"] = True
        return user

    def chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat

    def to_sim(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.username,
            "language_code": self.language_code,
            "is_premium": self.is_premium,
            "started": self.started,
            "blocked": self.blocked,
        }


@dataclass(kw_only=True)
class Entry(ABC):
    """One item of a chat's timeline."""

    seq: int = 0
    first_seq: int = 0
    version: int = 1

    @property
    @abstractmethod
    def entry_id(self) -> str: ...

    @abstractmethod
    def to_sim(self) -> dict[str, Any]: ...

    def _head(self, kind: str) -> dict[str, Any]:
        return {
            "type": kind,
            "entry_id": self.entry_id,
            "seq": self.seq,
            "first_seq": self.first_seq,
            "version": self.version,
        }


@dataclass(kw_only=True)
class StoredMessage(Entry):
    message_id: int
    direction: Direction
    date: int
    sender: dict[str, Any]
    chat: dict[str, Any]
    # The text, or the caption of a media message, after entity parsing.
    body: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    raw_body: str | None = None  # as the bot sent it, before parse_mode was applied
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    media: StoredFile | None = None
    contact: dict[str, Any] | None = None
    reply_to: StoredMessage | None = None
    link_preview_options: dict[str, Any] | None = None
    edit_date: int | None = None
    deleted: bool = False

    @property
    def entry_id(self) -> str:
        return f"msg:{self.message_id}"

    def to_telegram(self, *, nested: bool = False) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self.message_id,
            "from": self.sender,
            "chat": self.chat,
            "date": self.date,
        }
        if self.edit_date is not None:
            message["edit_date"] = self.edit_date
        if self.media is not None:
            message[self.media.kind] = self.media.to_telegram()
            if self.body:
                message["caption"] = self.body
                if self.entities:
                    message["caption_entities"] = self.entities
        elif self.body is not None:
            message["text"] = self.body
            if self.entities:
                message["entities"] = self.entities
        if self.contact is not None:
            message["contact"] = self.contact
        if self.reply_to is not None and not nested:
            message["reply_to_message"] = self.reply_to.to_telegram(nested=True)
        # Telegram only ever reports inline keyboards back in Message objects.
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            message["reply_markup"] = self.reply_markup
        return message

    def to_sim(self) -> dict[str, Any]:
        has_media = self.media is not None
        return {
            **self._head("message"),
            "direction": self.direction,
            "message_id": self.message_id,
            "date": self.date,
            "edit_date": self.edit_date,
            "text": None if has_media else self.body,
            "caption": self.body if has_media else None,
            "entities": self.entities,
            "html": render_html(self.body, self.entities) if self.body else None,
            "raw_text": self.raw_body,
            "parse_mode": self.parse_mode,
            "reply_markup": self.reply_markup,
            "reply_to_message_id": self.reply_to.message_id if self.reply_to else None,
            "media": self.media.to_sim() if self.media else None,
            "contact": self.contact,
            "link_preview_options": self.link_preview_options,
            "edited": self.edit_date is not None,
            "deleted": self.deleted,
        }


@dataclass(kw_only=True)
class CallbackRecord(Entry):
    """A press on an inline button, and the bot's answer once it comes."""

    callback_query_id: str
    user_id: int
    message_id: int
    data: str
    date: int
    answer: dict[str, Any] | None = None

    @property
    def entry_id(self) -> str:
        return f"cb:{self.callback_query_id}"

    def to_sim(self) -> dict[str, Any]:
        return {
            **self._head("callback"),
            "direction": "in",
            "callback_query_id": self.callback_query_id,
            "message_id": self.message_id,
            "data": self.data,
            "date": self.date,
            "answered": self.answer is not None,
            "answer": self.answer,
        }


@dataclass(kw_only=True)
class ChatEvent(Entry):
    """Something that is no message: a chat action ("typing"), the user blocking the bot."""

    event_id: int
    kind: EventKind
    direction: Direction
    date: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def entry_id(self) -> str:
        return f"event:{self.event_id}"

    def to_sim(self) -> dict[str, Any]:
        return {
            **self._head(self.kind),
            "direction": self.direction,
            "date": self.date,
            **self.details,
        }


class Chat:
    """A private chat between the bot and one simulated user."""

    def __init__(self, user: SimUser, *, max_entries: int):
        self.user = user
        self.max_entries = max_entries
        self.next_message_id = 1
        self.messages: OrderedDict[int, StoredMessage] = OrderedDict()
        # Kept in seq order: a changed entry moves to the end.
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        # The reply keyboard the user currently sees (ReplyKeyboardMarkup), if any.
        self.reply_keyboard: dict[str, Any] | None = None
        self.changed = Signal()

    def put(self, entry: Entry, seq: int) -> None:
        """Record a new or changed entry under a fresh seq and wake the chat's long-pollers."""
        if entry.first_seq == 0:
            entry.first_seq = seq
        else:
            entry.version += 1
        entry.seq = seq
        self.entries[entry.entry_id] = entry
        self.entries.move_to_end(entry.entry_id)
        if isinstance(entry, StoredMessage):
            self.messages[entry.message_id] = entry
        while len(self.entries) > self.max_entries:
            _, dropped = self.entries.popitem(last=False)
            if isinstance(dropped, StoredMessage):
                self.messages.pop(dropped.message_id, None)
        self.changed.fire()

    def entries_after(self, after: int) -> list[Entry]:
        newer: list[Entry] = []
        for entry in reversed(self.entries.values()):
            if entry.seq <= after:
                break
            newer.append(entry)
        newer.reverse()
        return newer

    def take_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id
