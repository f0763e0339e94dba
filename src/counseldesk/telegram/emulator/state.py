"""The emulator's whole world, in memory: simulated users and their chats, the update queue, the
webhook, files, the Bot API call log, faults and flood control.

Every mutation is a plain (synchronous) method, so under asyncio each one is atomic; only the
long polls (getUpdates, the simulator's chat feed) await, on `Signal`s fired by those mutations.
Sizes are capped so that a long `make run` session or a load test cannot exhaust memory.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from counseldesk.config import EMULATOR_BOT_TOKEN
from counseldesk.telegram.emulator.calls import CallLog
from counseldesk.telegram.emulator.entities import utf16_len
from counseldesk.telegram.emulator.errors import SimError, bad_request, forbidden
from counseldesk.telegram.emulator.limits import FaultBook, RateLimiter
from counseldesk.telegram.emulator.markup import inline_callback_data
from counseldesk.telegram.emulator.media import FileStore, MediaKind, StoredFile
from counseldesk.telegram.emulator.records import (
    CallbackRecord,
    Chat,
    ChatEvent,
    Direction,
    Entry,
    EventKind,
    SimUser,
    StoredMessage,
)
from counseldesk.telegram.emulator.updates import UpdateQueue

# Simulated users get ids from a range real Telegram users also reach (above 2**32), which
# keeps BIGINT columns honest.
FIRST_AUTO_USER_ID = 7_000_000_001
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024


@dataclass
class EmulatorConfig:
    """Knobs a test or the simulator page may turn at run time (POST /sim/config)."""

    # Sends (send* methods) per second across all chats beyond which Telegram answers 429;
    # None: no limit. Telegram's documented figure is about 30.
    rate_limit_per_second: int | None = None
    # The same per chat (Telegram: about 1 per second in a private chat); None: no limit.
    per_chat_rate_limit_per_second: int | None = None
    # Webhook delivery: attempts per update before it is dropped, the first pause between
    # attempts (doubling, at most 2 s) and the time the webhook has to answer.
    webhook_max_attempts: int = 5
    webhook_retry_delay: float = 0.1
    webhook_timeout: float = 10.0

    def to_sim(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class UserAction:
    """What a simulated student's action produced: the update sent to the bot (None when the
    bot's allowed_updates filter drops its type) and the new timeline entry."""

    update_id: int | None
    entry: Entry


def _bot_id_of(token: str) -> int:
    return int(token.split(":", 1)[0])


class EmulatorState:
    def __init__(
        self,
        *,
        bot_first_name: str = "Counseldesk",
        bot_username: str = "counseldesk_bot",
        max_calls: int = 2_000,
        max_pending_updates: int = 10_000,
        max_chat_entries: int = 2_000,
        max_file_bytes: int = 256 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
    ):
        self.bot_first_name = bot_first_name
        self.bot_username = bot_username
        # The bot is whoever calls: its id is the number before the colon of the last token
        # seen (the token also serves calls carried in webhook answers).
        self.bot_token = EMULATOR_BOT_TOKEN
        self.bot_id = _bot_id_of(EMULATOR_BOT_TOKEN)
        self.max_chat_entries = max_chat_entries
        self._clock = clock
        self.config = EmulatorConfig()
        self.users: dict[int, SimUser] = {}
        self.chats: dict[int, Chat] = {}
        self.files = FileStore(max_file_bytes)
        self.calls = CallLog(max_calls, clock)
        self.faults = FaultBook()
        self.limiter = RateLimiter()
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.callbacks: OrderedDict[str, tuple[CallbackRecord, Chat]] = OrderedDict()
        # Counters never restart, not even on reset(): clients keep polling with `after=<seq>`,
        # and the bot remembers processed update ids across emulator restarts, so update ids
        # start from the clock (milliseconds), as Telegram's start from an arbitrary number.
        self.queue = UpdateQueue(
            max_pending=max_pending_updates, first_update_id=int(clock() * 1000)
        )
        self._seq = 0
        self._event_seq = 0
        self._next_user_id = FIRST_AUTO_USER_ID

    # --- small helpers --------------------------------------------------------------------

    def now(self) -> int:
        return int(self._clock())

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    @property
    def last_seq(self) -> int:
        return self._seq

    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def note_token(self, token: str) -> None:
        self.bot_token = token
        self.bot_id = _bot_id_of(token)

    # --- users ----------------------------------------------------------------------------

    def create_user(
        self,
        *,
        user_id: int | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        is_premium: bool = False,
        started: bool = True,
    ) -> SimUser:
        if user_id is None:
            while self._next_user_id in self.users:
                self._next_user_id += 1
            user_id = self._next_user_id
            self._next_user_id += 1
        if user_id <= 0:
            raise SimError(422, "user id must be a positive integer")
        if user_id in self.users:
            raise SimError(409, f"user {user_id} already exists")
        user = SimUser(
            id=user_id,
            first_name=first_name or f"Student {user_id}",
            last_name=last_name,
            username=username,
            language_code=language_code,
            is_premium=is_premium,
            started=started,
        )
        self.users[user_id] = user
        self.chats[user_id] = Chat(user, max_entries=self.max_chat_entries)
        return user

    def user(self, user_id: int) -> SimUser:
        user = self.users.get(user_id)
        if user is None:
            raise SimError(404, f"no simulated user {user_id}; create it with POST /sim/users")
        return user

    def chat(self, user_id: int) -> Chat:
        self.user(user_id)
        return self.chats[user_id]

    def _acting_chat(self, user_id: int) -> Chat:
        chat = self.chat(user_id)
        if chat.user.blocked:
            raise SimError(409, f"user {user_id} has blocked the bot; unblock first")
        # Writing to the bot is what "starting" it means.
        chat.user.started = True
        return chat

    # --- what a simulated student does ----------------------------------------------------

    def _user_message(self, chat: Chat, **fields: Any) -> StoredMessage:
        message = StoredMessage(
            message_id=chat.take_message_id(),
            direction="in",
            date=self.now(),
            sender=chat.user.to_telegram(),
            chat=chat.user.chat(),
            **fields,
        )
        chat.put(message, self.next_seq())
        keyboard = chat.reply_keyboard
        if keyboard is not None and keyboard.get("one_time_keyboard"):
            chat.reply_keyboard = None
        return message

    def _reply_target(self, chat: Chat, message_id: int | None) -> StoredMessage | None:
        if message_id is None:
            return None
        target = chat.messages.get(message_id)
        if target is None or target.deleted:
            raise SimError(404, f"message {message_id} not found in the chat")
        return target

    def user_sends_text(
        self, user_id: int, text: str, *, reply_to_message_id: int | None = None
    ) -> UserAction:
        if not text.strip():
            raise SimError(422, "text must not be empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise SimError(422, f"text is longer than {MAX_TEXT_LENGTH} characters")
        chat = self._acting_chat(user_id)
        entities: list[dict[str, Any]] = []
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            entities.append({"type": "bot_command", "offset": 0, "length": utf16_len(command)})
        message = self._user_message(
            chat,
            body=text,
            entities=entities,
            reply_to=self._reply_target(chat, reply_to_message_id),
        )
        return UserAction(self.push_update("message", message.to_telegram()), message)

    def user_shares_contact(
        self,
        user_id: int,
        phone_number: str,
        *,
        contact_user_id: int | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> UserAction:
        """The student taps a request_contact button (their own contact) or, with another
        contact_user_id, shares someone else's card."""
        if not phone_number.strip():
            raise SimError(422, "phone_number must not be empty")
        chat = self._acting_chat(user_id)
        own = contact_user_id is None or contact_user_id == user_id
        contact: dict[str, Any] = {
            "phone_number": phone_number,
            "first_name": first_name or (chat.user.first_name if own else "Contact"),
            "user_id": user_id if own else contact_user_id,
        }
        surname = last_name or (chat.user.last_name if own else None)
        if surname:
            contact["last_name"] = surname
        message = self._user_message(chat, contact=contact)
        return UserAction(self.push_update("message", message.to_telegram()), message)

    def user_sends_media(
        self,
        user_id: int,
        kind: MediaKind,
        content: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        caption: str | None = None,
        duration: int = 0,
    ) -> UserAction:
        if not content:
            raise SimError(422, "the file is empty")
        if caption is not None and len(caption) > MAX_CAPTION_LENGTH:
            raise SimError(422, f"caption is longer than {MAX_CAPTION_LENGTH} characters")
        chat = self._acting_chat(user_id)
        stored = self.files.add(
            kind, content, file_name=file_name, mime_type=mime_type, duration=duration
        )
        message = self._user_message(chat, media=stored, body=caption or None)
        return UserAction(self.push_update("message", message.to_telegram()), message)

    def user_presses_button(
        self, user_id: int, message_id: int, data: str, *, force: bool = False
    ) -> UserAction:
        """A tap on an inline button. Unless `force`, the message must be the bot's and show a
        button with this callback_data now (a real client cannot press anything else)."""
        chat = self._acting_chat(user_id)
        message = chat.messages.get(message_id)
        if message is None or message.deleted:
            raise SimError(404, f"message {message_id} not found in the chat")
        if not force and data not in inline_callback_data(message.reply_markup):
            raise SimError(
                409, f"message {message_id} has no inline button with callback_data {data!r}"
            )
        record = CallbackRecord(
            callback_query_id=str(secrets.randbits(62)),
            user_id=user_id,
            message_id=message_id,
            data=data,
            date=self.now(),
        )
        chat.put(record, self.next_seq())
        self.callbacks[record.callback_query_id] = (record, chat)
        while len(self.callbacks) > 10_000:
            self.callbacks.popitem(last=False)
        query = {
            "id": record.callback_query_id,
            "from": chat.user.to_telegram(),
            "message": message.to_telegram(),
            "chat_instance": str(user_id * 2 + 1),
            "data": data,
        }
        return UserAction(self.push_update("callback_query", query), record)

    def _member_update(self, chat: Chat, old: str, new: str) -> int | None:
        def member(status: str) -> dict[str, Any]:
            body: dict[str, Any] = {"status": status, "user": self.bot_user()}
            if status == "kicked":
                body["until_date"] = 0
            return body

        update = {
            "chat": chat.user.chat(),
            "from": chat.user.to_telegram(),
            "date": self.now(),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }
        return self.push_update("my_chat_member", update)

    def block(self, user_id: int) -> UserAction:
        chat = self.chat(user_id)
        if chat.user.blocked:
            raise SimError(409, f"user {user_id} has already blocked the bot")
        chat.user.blocked = True
        event = self.add_event(chat, "blocked", "in")
        return UserAction(self._member_update(chat, "member", "kicked"), event)

    def unblock(self, user_id: int) -> UserAction:
        chat = self.chat(user_id)
        if not chat.user.blocked:
            raise SimError(409, f"user {user_id} has not blocked the bot")
        chat.user.blocked = False
        event = self.add_event(chat, "unblocked", "in")
        return UserAction(self._member_update(chat, "kicked", "member"), event)

    # --- the simulator's view of a chat ---------------------------------------------------

    def chat_feed(self, user_id: int, after: int = 0) -> dict[str, Any]:
        chat = self.chat(user_id)
        return {
            "user": chat.user.to_sim(),
            "reply_keyboard": chat.reply_keyboard,
            "last_seq": self._seq,
            "entries": [entry.to_sim() for entry in chat.entries_after(after)],
        }

    async def wait_chat_feed(self, user_id: int, after: int, wait: float) -> dict[str, Any]:
        """chat_feed, but waits up to `wait` seconds for something newer than `after`."""
        chat = self.chat(user_id)
        deadline = time.monotonic() + wait
        while not chat.entries_after(after) and not self.closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.chats.get(user_id) is not chat:
                break
            await chat.changed.wait(remaining)
        if self.chats.get(user_id) is not chat:
            raise SimError(404, f"user {user_id} is gone (the emulator was reset)")
        return self.chat_feed(user_id, after)

    # --- what the bot does (called by the Bot API handlers) -------------------------------

    def chat_for_bot(self, chat_id: int | None, *, initiating: bool = True) -> Chat:
        """The chat a Bot API call addresses, refused the way Telegram refuses it."""
        chat = self.chats.get(chat_id) if chat_id is not None else None
        if chat is None:
            raise bad_request("chat not found")
        if chat.user.blocked:
            raise forbidden("bot was blocked by the user")
        if initiating and not chat.user.started:
            raise forbidden("bot can't initiate conversation with a user")
        return chat

    def add_bot_message(
        self,
        chat: Chat,
        *,
        body: str | None,
        entities: list[dict[str, Any]],
        raw_body: str | None,
        parse_mode: str | None,
        reply_markup: dict[str, Any] | None,
        media: StoredFile | None = None,
        reply_to: StoredMessage | None = None,
        link_preview_options: dict[str, Any] | None = None,
    ) -> StoredMessage:
        message = StoredMessage(
            message_id=chat.take_message_id(),
            direction="out",
            date=self.now(),
            sender=self.bot_user(),
            chat=chat.user.chat(),
            body=body,
            entities=entities,
            raw_body=raw_body,
            parse_mode=parse_mode,
            reply_markup=reply_markup,
            media=media,
            reply_to=reply_to,
            link_preview_options=link_preview_options,
        )
        chat.put(message, self.next_seq())
        if reply_markup is not None:
            if "keyboard" in reply_markup:
                chat.reply_keyboard = reply_markup
            elif reply_markup.get("remove_keyboard"):
                chat.reply_keyboard = None
        return message

    def message_changed(self, chat: Chat, message: StoredMessage, *, edited: bool) -> None:
        if edited:
            message.edit_date = self.now()
        chat.put(message, self.next_seq())

    def add_event(
        self,
        chat: Chat,
        kind: EventKind,
        direction: Direction,
        details: dict[str, Any] | None = None,
    ) -> ChatEvent:
        self._event_seq += 1
        event = ChatEvent(
            event_id=self._event_seq,
            kind=kind,
            direction=direction,
            date=self.now(),
            details=details or {},
        )
        chat.put(event, self.next_seq())
        return event

    def answer_callback(self, callback_query_id: str, answer: dict[str, Any]) -> None:
        found = self.callbacks.get(callback_query_id)
        if found is None or found[0].answer is not None:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        record, chat = found
        record.answer = answer
        chat.put(record, self.next_seq())

    def commands_key(self, scope: Any, language_code: str | None) -> tuple[str, str]:
        scope_key = json.dumps(scope, sort_keys=True) if scope else '{"type": "default"}'
        return scope_key, language_code or ""

    # --- updates ------------------------------------------------------------------------

    def push_update(self, kind: str, payload: dict[str, Any]) -> int | None:
        return self.queue.push(kind, payload)

    # --- lifecycle ------------------------------------------------------------------------

    def _wake_everyone(self) -> None:
        self.queue.changed.fire()
        for chat in self.chats.values():
            chat.changed.fire()

    def reset(self) -> None:
        """Forget everything but the counters (see __init__)."""
        self._wake_everyone()
        self.users.clear()
        self.chats.clear()
        self.files.clear()
        self.calls.clear()
        self.faults.clear()
        self.limiter.clear()
        self.commands.clear()
        self.callbacks.clear()
        self.queue.clear()
        self.config = EmulatorConfig()

    @property
    def closing(self) -> bool:
        return self.queue.closing

    def close(self) -> None:
        """Shutting down: end every long poll now instead of at its timeout."""
        self.queue.closing = True
        self._wake_everyone()

    def reopen(self) -> None:
        """Serving again after close() (a restarted server keeps its state)."""
        self.queue.closing = False
