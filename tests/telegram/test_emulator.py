"""The Bot API emulator, driven by a real aiogram Bot over HTTP and by its /sim/ control API."""

from __future__ import annotations

import asyncio
import struct
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiogram import Bot, Dispatcher, F, html
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
)
from aiohttp import web

from counseldesk.config import EMULATOR_BOT_TOKEN
from counseldesk.telegram.emulator import EmulatorServer
from counseldesk.telegram.emulator.entities import parse_html, render_html
from counseldesk.telegram.emulator.errors import BotApiError

BOT_ID = int(EMULATOR_BOT_TOKEN.split(":")[0])


@pytest.fixture(scope="session")
async def emulator() -> AsyncIterator[EmulatorServer]:
    server = EmulatorServer(port=0)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def bot(emulator: EmulatorServer) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emulator.url))
    bot = Bot(EMULATOR_BOT_TOKEN, session=session)
    yield bot
    await bot.session.close()


@pytest.fixture
async def sim(emulator: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    """The control API, on an emulator reset to empty for each test."""
    emulator.state.reset()
    async with httpx.AsyncClient(base_url=emulator.url) as client:
        yield client


async def new_user(sim: httpx.AsyncClient, **fields: Any) -> int:
    response = await sim.post("/sim/users", json=fields)
    assert response.status_code == 201, response.text
    user_id: int = response.json()["id"]
    return user_id


async def feed(sim: httpx.AsyncClient, user_id: int, after: int = 0) -> dict[str, Any]:
    response = await sim.get(f"/sim/users/{user_id}/chat", params={"after": after})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80" * width for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


BUTTONS = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="Book", callback_data="menu:book")]]
)


# --- the Bot API as aiogram sees it -------------------------------------------------------


async def test_get_me_answers_for_the_token_the_bot_uses(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == BOT_ID
    assert me.is_bot is True
    assert me.username == "counseldesk_bot"


async def test_send_message_with_html_and_inline_keyboard(bot: Bot, sim: httpx.AsyncClient) -> None:
    user_id = await new_user(sim, first_name="Amina", username="amina_k")
    sent = await bot.send_message(
        user_id, "<b>Hi</b> Amina &lt;3 😀 <i>x</i>", parse_mode="HTML", reply_markup=BUTTONS
    )

    assert sent.message_id == 1
    assert sent.from_user is not None and sent.from_user.id == BOT_ID
    assert sent.chat.id == user_id and sent.chat.type == "private"
    assert sent.text == "Hi Amina <3 😀 x"
    assert sent.entities is not None
    # The emoji is two UTF-16 code units: the italic "x" starts at 15, not 14.
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 0, 2),
        ("italic", 15, 1),
    ]
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "menu:book"

    (entry,) = (await feed(sim, user_id))["entries"]
    assert entry["direction"] == "out"
    assert entry["raw_text"] == "<b>Hi</b> Amina &lt;3 😀 <i>x</i>"
    assert entry["html"] == "<b>Hi</b> Amina &lt;3 😀 <i>x</i>"
    assert entry["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "menu:book"


async def test_message_ids_increase_per_chat_in_both_directions(
    bot: Bot, sim: httpx.AsyncClient
) -> None:
    first, second = await new_user(sim), await new_user(sim)
    assert first != second
    await bot.send_message(first, "one")
    response = await sim.post(f"/sim/users/{first}/messages", json={"text": "hello"})
    assert response.json()["entry"]["message_id"] == 2
    assert (await bot.send_message(first, "three")).message_id == 3
    assert (await bot.send_message(second, "other chat")).message_id == 1


async def test_edits_show_in_the_chat_feed_as_a_new_version(
    bot: Bot, sim: httpx.AsyncClient
) -> None:
    user_id = await new_user(sim)
    sent = await bot.send_message(user_id, "Pick a day", reply_markup=BUTTONS)
    before = (await feed(sim, user_id))["last_seq"]

    edited = await bot.edit_message_text(
        text="<b>Booked</b>", chat_id=user_id, message_id=sent.message_id, parse_mode="HTML"
    )
    assert not isinstance(edited, bool)
    assert edited.text == "Booked" and edited.edit_date is not None
    # Telegram drops the inline keyboard of an edited message that does not resend it.
    assert edited.reply_markup is None

    (change,) = (await feed(sim, user_id, after=before))["entries"]
    assert change["message_id"] == sent.message_id
    assert change["version"] == 2 and change["edited"] is True
    assert change["text"] == "Booked" and change["reply_markup"] is None
    assert change["first_seq"] < change["seq"]
    # The full feed still holds the message once, in its current state.
    assert [e["text"] for e in (await feed(sim, user_id))["entries"]] == ["Booked"]

    await bot.edit_message_reply_markup(
        chat_id=user_id, message_id=sent.message_id, reply_markup=BUTTONS
    )
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(
            chat_id=user_id, message_id=sent.message_id, reply_markup=BUTTONS
        )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=user_id, message_id=99)


async def test_delete_marks_the_message_deleted(bot: Bot, sim: httpx.AsyncClient) -> None:
    user_id = await new_user(sim)
    sent = await bot.send_message(user_id, "temporary")
    assert await bot.delete_message(user_id, sent.message_id) is True
    (entry,) = (await feed(sim, user_id))["entries"]
    assert entry["deleted"] is True and entry["version"] == 2
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(user_id, sent.message_id)


@pytest.mark.parametrize(
    ("text", "parse_mode", "markup", "description"),
    [
        ("", None, None, "Bad Request: message text is empty"),
        ("<b> </b>", "HTML", None, "Bad Request: message text is empty"),
        ("a" * 4097, None, None, "Bad Request: message is too long"),
        ("<b>unclosed", "HTML", None, "can't parse entities: Can't find end tag"),
        ("1 < 2", "HTML", None, 'can\'t parse entities: Unsupported start tag ""'),
        ("<div>x</div>", "HTML", None, 'Unsupported start tag "div" at byte offset 0'),
        ("<b><i>x</b></i>", "HTML", None, 'expected "</i>", found "</b>"'),
        (
            "ok",
            None,
            InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="d" * 65)]]
            ),
            "Bad Request: BUTTON_DATA_INVALID",
        ),
    ],
)
async def test_send_message_is_validated_like_telegram(
    bot: Bot,
    sim: httpx.AsyncClient,
    text: str,
    parse_mode: str | None,
    markup: InlineKeyboardMarkup | None,
    description: str,
) -> None:
    user_id = await new_user(sim)
    with pytest.raises(TelegramBadRequest) as caught:
        await bot.send_message(user_id, text, parse_mode=parse_mode, reply_markup=markup)
    assert description in caught.value.message
    assert (await feed(sim, user_id))["entries"] == []


async def test_length_limit_counts_text_after_entity_parsing(
    bot: Bot, sim: httpx.AsyncClient
) -> None:
    user_id = await new_user(sim)
    sent = await bot.send_message(user_id, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
    assert sent.text is not None and len(sent.text) == 4096


async def test_unknown_blocked_and_unstarted_chats_are_refused(
    bot: Bot, sim: httpx.AsyncClient
) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(123456, "anyone?")

    user_id = await new_user(sim)
    blocked = await sim.post(f"/sim/users/{user_id}/block")
    assert blocked.json()["user"]["blocked"] is True
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(user_id, "hello")
    await sim.post(f"/sim/users/{user_id}/unblock")
    assert (await bot.send_message(user_id, "welcome back")).message_id == 1
    kinds = [e["type"] for e in (await feed(sim, user_id))["entries"]]
    assert kinds == ["blocked", "unblocked", "message"]

    shy = await new_user(sim, started=False)
    with pytest.raises(TelegramForbiddenError, match="can't initiate conversation"):
        await bot.send_message(shy, "hi")
    await sim.post(f"/sim/users/{shy}/messages", json={"text": "/start"})
    assert (await bot.send_message(shy, "hi")).message_id == 2


async def test_blocking_sends_my_chat_member_updates(bot: Bot, sim: httpx.AsyncClient) -> None:
    user_id = await new_user(sim)
    await sim.post(f"/sim/users/{user_id}/block")
    (update,) = await bot.get_updates(timeout=0)
    assert update.my_chat_member is not None
    assert update.my_chat_member.new_chat_member.status == "kicked"
    assert update.my_chat_member.from_user.id == user_id


# --- updates: long polling ----------------------------------------------------------------


async def test_get_updates_long_poll_wakes_on_a_student_message(
    bot: Bot, sim: httpx.AsyncClient
) -> None:
    user_id = await new_user(sim, first_name="Brian", language_code="en")
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await sim.post(f"/sim/users/{user_id}/messages", json={"text": "/start"})
    (update,) = await poll
    assert time.monotonic() - started < 2

    message = update.message
    assert message is not None
    assert message.text == "/start"
    assert message.from_user is not None and message.from_user.first_name == "Brian"
    assert message.chat.id == user_id and message.chat.type == "private"
    assert message.entities is not None and message.entities[0].type == "bot_command"

    # An offset past an update confirms it: it is not returned again.
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == []


async def test_update_ids_increase_and_poll_returns_empty_after_timeout(
    bot: Bot, sim: httpx.AsyncClient
) -> None:
    user_id = await new_user(sim)
    for text in ("one", "two", "three"):
        await sim.post(f"/sim/users/{user_id}/messages", json={"text": text})
    updates = await bot.get_updates(limit=2, timeout=0)
    assert [u.message.text for u in updates if u.message] == ["one", "two"]
    assert updates[0].update_id + 1 == updates[1].update_id
    rest = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    assert [u.message.text for u in rest if u.message] == ["three"]

    # aiogram only sends whole seconds; Telegram (and the emulator) take fractions too.
    started = time.monotonic()
    empty = await sim.get(
        f"/bot{EMULATOR_BOT_TOKEN}/getUpdates",
        params={"offset": rest[0].update_id + 1, "timeout": 0.3},
    )
    assert empty.json() == {"ok": True, "result": []}
    assert 0.25 < time.monotonic() - started < 2


async def test_a_newer_get_updates_ends_the_older_one_with_409(
    bot: Bot, sim: httpx.AsyncClient
) -> None:
    older = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    newer = await sim.get(f"/bot{EMULATOR_BOT_TOKEN}/getUpdates", params={"timeout": 0.1})
    assert newer.json() == {"ok": True, "result": []}
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await older


async def test_inline_button_press_and_callback_answer(bot: Bot, sim: httpx.AsyncClient) -> None:
    user_id = await new_user(sim)
    sent = await bot.send_message(user_id, "Menu", reply_markup=BUTTONS)

    refused = await sim.post(
        f"/sim/users/{user_id}/callback", json={"message_id": sent.message_id, "data": "nope"}
    )
    assert refused.status_code == 409
    assert "no inline button" in refused.json()["detail"]

    pressed = await sim.post(
        f"/sim/users/{user_id}/callback",
        json={"message_id": sent.message_id, "data": "menu:book"},
    )
    assert pressed.status_code == 201
    (update,) = await bot.get_updates(timeout=1)
    query = update.callback_query
    assert query is not None
    assert query.data == "menu:book" and query.from_user.id == user_id
    assert query.message is not None and query.message.message_id == sent.message_id
    assert query.id == pressed.json()["entry"]["callback_query_id"]

    assert await bot.answer_callback_query(query.id, text="Slot taken", show_alert=True)
    callback = next(e for e in (await feed(sim, user_id))["entries"] if e["type"] == "callback")
    assert callback["answered"] is True
    assert callback["answer"]["text"] == "Slot taken" and callback["answer"]["show_alert"] is True
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)


async def test_contact_sharing_through_a_reply_keyboard(bot: Bot, sim: httpx.AsyncClient) -> None:
    user_id = await new_user(sim, first_name="Chen", last_name="Wei")
    keyboard = ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="Share my phone", request_contact=True)]],
        one_time_keyboard=True,
        resize_keyboard=True,
    )
    await bot.send_message(user_id, "Your phone, please", reply_markup=keyboard)
    shown = (await feed(sim, user_id))["reply_keyboard"]
    assert shown["keyboard"][0][0]["request_contact"] is True

    await sim.post(f"/sim/users/{user_id}/contact", json={"phone_number": "+254700000001"})
    await sim.post(
        f"/sim/users/{user_id}/contact",
        json={"phone_number": "+254700000002", "user_id": 42, "first_name": "Mum"},
    )
    own, other = await bot.get_updates(timeout=1)
    assert own.message is not None and own.message.contact is not None
    assert own.message.contact.user_id == user_id
    assert own.message.contact.phone_number == "+254700000001"
    assert own.message.contact.first_name == "Chen"
    assert other.message is not None and other.message.contact is not None
    assert other.message.contact.user_id == 42
    # A one-time keyboard hides once used.
    assert (await feed(sim, user_id))["reply_keyboard"] is None

    await bot.send_message(user_id, "x", reply_markup=keyboard)
    await bot.send_message(user_id, "Thanks", reply_markup=ReplyKeyboardRemove())
    assert (await feed(sim, user_id))["reply_keyboard"] is None


async def test_reply_parameters(bot: Bot, sim: httpx.AsyncClient) -> None:
    user_id = await new_user(sim)
    question = await sim.post(f"/sim/users/{user_id}/messages", json={"text": "When?"})
    asked = question.json()["entry"]["message_id"]
    answer = await bot.send_message(
        user_id, "Tomorrow", reply_parameters=ReplyParameters(message_id=asked)
    )
    assert answer.reply_to_message is not None
    assert answer.reply_to_message.text == "When?"
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(user_id, "x", reply_parameters=ReplyParameters(message_id=77))


# --- files -------------------------------------------------------------------------------


async def test_student_photo_reaches_the_bot_and_downloads(
    bot: Bot, sim: httpx.AsyncClient
) -> None:
    user_id = await new_user(sim)
    image = png(3, 2)
    response = await sim.post(
        f"/sim/users/{user_id}/media",
        data={"kind": "photo", "caption": "my timetable"},
        files={"file": ("timetable.png", image, "image/png")},
    )
    assert response.status_code == 201, response.text
    (update,) = await bot.get_updates(timeout=1)
    message = update.message
    assert message is not None and message.photo is not None
    assert message.caption == "my timetable"
    photo = message.photo[-1]
    assert (photo.width, photo.height, photo.file_size) == (3, 2, len(image))

    file = await bot.get_file(photo.file_id)
    assert file.file_path is not None and file.file_size == len(image)
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == image

    # The bot can send a file it received by its file_id, without uploading it again.
    echoed = await bot.send_photo(
        user_id, photo.file_id, caption="<i>got it</i>", parse_mode="HTML"
    )
    assert echoed.photo is not None and echoed.photo[-1].file_id == photo.file_id
    assert echoed.caption == "got it"
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("no-such-file")


async def test_bot_uploads_document_and_voice_visible_to_the_simulator(
    bot: Bot, sim: httpx.AsyncClient
) -> None:
    user_id = await new_user(sim)
    pdf = b"%PDF-1.4 fake"
    sent = await bot.send_document(
        user_id, BufferedInputFile(pdf, filename="receipt.pdf"), caption="Your receipt"
    )
    assert sent.document is not None
    assert sent.document.file_name == "receipt.pdf"
    assert sent.document.mime_type == "application/pdf"

    voice = await bot.send_voice(user_id, BufferedInputFile(b"OggS....", filename="v.ogg"))
    assert voice.voice is not None and voice.voice.mime_type == "audio/ogg"

    document_entry, voice_entry = (await feed(sim, user_id))["entries"]
    assert document_entry["caption"] == "Your receipt"
    assert document_entry["media"]["kind"] == "document"
    fetched = await sim.get(document_entry["media"]["url"])
    assert fetched.status_code == 200 and fetched.content == pdf
    assert voice_entry["media"]["kind"] == "voice"

    with pytest.raises(TelegramBadRequest, match="can't use file of type Document as Photo"):
        await bot.send_photo(user_id, sent.document.file_id)


async def test_student_voice_and_document(bot: Bot, sim: httpx.AsyncClient) -> None:
    user_id = await new_user(sim)
    await sim.post(
        f"/sim/users/{user_id}/media",
        data={"kind": "voice", "duration": "4"},
        files={"file": ("note.ogg", b"OggS-voice", "audio/ogg")},
    )
    await sim.post(
        f"/sim/users/{user_id}/media",
        data={"kind": "document"},
        files={"file": ("letter.pdf", b"%PDF", "application/pdf")},
    )
    voice, document = await bot.get_updates(timeout=1)
    assert voice.message is not None and voice.message.voice is not None
    assert voice.message.voice.duration == 4
    assert document.message is not None and document.message.document is not None
    assert document.message.document.file_name == "letter.pdf"


# --- webhook -----------------------------------------------------------------------------


async def test_webhook_delivers_in_order_with_secret_and_retries(
    bot: Bot, sim: httpx.AsyncClient
) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    attempts = 0
    all_received = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            return web.Response(status=500)  # the first delivery fails: it must be retried
        update = await request.json()
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), update))
        if len(received) == 3:
            all_received.set()
        if update["message"]["text"] == "ping":
            # aiogram's "reply into webhook": the answer carries a Bot API call.
            chat_id = update["message"]["chat"]["id"]
            return web.json_response({"method": "sendMessage", "chat_id": chat_id, "text": "pong"})
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/telegram/webhook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await sim.post("/sim/config", json={"webhook_retry_delay": 0.01})
        user_id = await new_user(sim)
        url = f"http://127.0.0.1:{port}/telegram/webhook"
        assert await bot.set_webhook(url, secret_token="s3cret-token")
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()

        for text in ("first", "second", "ping"):
            await sim.post(f"/sim/users/{user_id}/messages", json={"text": text})
        await asyncio.wait_for(all_received.wait(), timeout=3)

        assert [update["message"]["text"] for _, update in received] == ["first", "second", "ping"]
        assert {secret for secret, _ in received} == {"s3cret-token"}
        assert attempts == 4
        info = await bot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0
        assert info.last_error_message is not None and "500" in info.last_error_message

        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            texts = [e["text"] for e in (await feed(sim, user_id))["entries"]]
            if "pong" in texts:
                break
            await asyncio.sleep(0.01)
        assert texts[-1] == "pong"

        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


async def test_unreachable_webhook_gives_up_after_bounded_attempts(
    bot: Bot, sim: httpx.AsyncClient
) -> None:
    await sim.post("/sim/config", json={"webhook_retry_delay": 0.01, "webhook_max_attempts": 3})
    user_id = await new_user(sim)
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    await bot.set_webhook("http://127.0.0.1:9/hook")
    await sim.post(f"/sim/users/{user_id}/messages", json={"text": "lost"})
    deadline = time.monotonic() + 3
    info = await bot.get_webhook_info()
    while info.pending_update_count and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        info = await bot.get_webhook_info()
    assert info.pending_update_count == 0
    assert info.last_error_message is not None


# --- fault injection and flood control -----------------------------------------------------


async def test_injected_faults_hit_the_next_calls_then_stop(
    bot: Bot, sim: httpx.AsyncClient
) -> None:
    user_id = await new_user(sim)
    armed = await sim.post(
        "/sim/faults",
        json={"method": "sendmessage", "count": 2, "error_code": 429, "retry_after": 7},
    )
    assert armed.status_code == 201 and armed.json()["method"] == "sendMessage"
    for _ in range(2):
        with pytest.raises(TelegramRetryAfter) as caught:
            await bot.send_message(user_id, "hi")
        assert caught.value.retry_after == 7
    assert (await bot.send_message(user_id, "hi")).message_id == 1

    await sim.post(
        "/sim/faults", json={"method": "*", "error_code": 403, "chat_id": user_id, "count": 1}
    )
    assert (await bot.get_me()).id == BOT_ID  # other chats (here: none) are not affected
    with pytest.raises(TelegramForbiddenError, match="blocked"):
        await bot.send_chat_action(user_id, "typing")
    assert (await sim.get("/sim/faults")).json()["faults"] == []

    calls = (await sim.get("/sim/calls", params={"method": "sendMessage"})).json()["calls"]
    assert [call["status"] for call in calls] == [429, 429, 200]
    assert calls[0]["parameters"] == {"retry_after": 7}
    assert calls[2]["params"]["text"] == "hi" and calls[2]["result"]["message_id"] == 1


async def test_rate_limit_answers_429_beyond_the_configured_rate(
    bot: Bot, sim: httpx.AsyncClient
) -> None:
    user_id = await new_user(sim)
    configured = await sim.post("/sim/config", json={"rate_limit_per_second": 3})
    assert configured.json()["rate_limit_per_second"] == 3
    for n in range(3):
        await bot.send_message(user_id, f"message {n}")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(user_id, "one too many")
    assert caught.value.retry_after >= 1
    await bot.get_me()  # not a send: not limited

    await sim.post("/sim/config", json={"rate_limit_per_second": None})
    await bot.send_message(user_id, "unlimited again")
    assert len((await feed(sim, user_id))["entries"]) == 4


# --- the rest of the Bot API surface ------------------------------------------------------


async def test_commands_and_chat_actions(bot: Bot, sim: httpx.AsyncClient) -> None:
    commands = [
        BotCommand(command="start", description="Start"),
        BotCommand(command="help", description="Help"),
    ]
    assert await bot.set_my_commands(commands)
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    assert await bot.get_my_commands(language_code="sw") == []
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Not Valid", description="x")])

    user_id = await new_user(sim)
    assert await bot.send_chat_action(user_id, "typing")
    (entry,) = (await feed(sim, user_id))["entries"]
    assert entry["type"] == "chat_action" and entry["action"] == "typing"


async def test_raw_http_json_urlencoded_and_unknown_methods(
    emulator: EmulatorServer, sim: httpx.AsyncClient
) -> None:
    user_id = await new_user(sim)
    base = f"/bot{EMULATOR_BOT_TOKEN}"
    as_json = await sim.post(f"{base}/sendMessage", json={"chat_id": user_id, "text": "json"})
    assert as_json.json()["ok"] is True and as_json.json()["result"]["text"] == "json"
    as_form = await sim.post(f"{base}/SENDMESSAGE", data={"chat_id": str(user_id), "text": "f"})
    assert as_form.json()["result"]["message_id"] == 2
    as_query = await sim.get(f"{base}/getMe")
    assert as_query.json()["result"]["id"] == BOT_ID

    unknown = await sim.post(f"{base}/fooBar")
    assert unknown.status_code == 404
    assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    bad_token = await sim.get("/botnot-a-token/getMe")
    assert bad_token.status_code == 401 and bad_token.json()["ok"] is False
    missing_file = await sim.get(f"/file{base}/photos/nothing.jpg")
    assert missing_file.status_code == 404
    # The state behind the server is the object tests can inspect directly.
    assert [m.body for m in emulator.state.chat(user_id).messages.values()] == ["json", "f"]


# --- the control API ----------------------------------------------------------------------


async def test_control_api_rejects_bad_input_with_reasons(sim: httpx.AsyncClient) -> None:
    user_id = await new_user(sim, id=555)
    assert user_id == 555
    duplicate = await sim.post("/sim/users", json={"id": 555})
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["detail"]
    unknown = await sim.post("/sim/users/1/messages", json={"text": "x"})
    assert unknown.status_code == 404 and "POST /sim/users" in unknown.json()["detail"]
    empty = await sim.post(f"/sim/users/{user_id}/messages", json={"text": ""})
    assert empty.status_code == 422
    typo = await sim.post(f"/sim/users/{user_id}/messages", json={"txt": "x"})
    assert typo.status_code == 422
    no_method = await sim.post("/sim/faults", json={"method": "sendPigeon", "error_code": 500})
    assert no_method.status_code == 422 and "sendPigeon" in no_method.text
    no_effect = await sim.post("/sim/faults", json={"method": "sendMessage"})
    assert no_effect.status_code == 422
    missing = await sim.post(f"/sim/users/{user_id}/callback", json={"message_id": 9, "data": "x"})
    assert missing.status_code == 404
    bad_kind = await sim.post(
        f"/sim/users/{user_id}/media", data={"kind": "sticker"}, files={"file": ("a", b"x")}
    )
    assert bad_kind.status_code == 422
    listed = (await sim.get("/sim/users")).json()["users"]
    assert [u["id"] for u in listed] == [555]


async def test_chat_feed_long_polls_until_the_bot_answers(bot: Bot, sim: httpx.AsyncClient) -> None:
    user_id = await new_user(sim)
    sent = await sim.post(f"/sim/users/{user_id}/messages", json={"text": "hello"})
    after = sent.json()["entry"]["seq"]

    async def answer_later() -> None:
        await asyncio.sleep(0.1)
        await bot.send_message(user_id, "Hello! How can we help?")

    started = time.monotonic()
    answering = asyncio.create_task(answer_later())
    response = await sim.get(f"/sim/users/{user_id}/chat", params={"after": after, "wait": 5})
    await answering
    assert time.monotonic() - started < 2
    (entry,) = response.json()["entries"]
    assert entry["direction"] == "out" and entry["text"] == "Hello! How can we help?"
    assert entry["seq"] > after

    started = time.monotonic()
    idle = await sim.get(
        f"/sim/users/{user_id}/chat", params={"after": response.json()["last_seq"], "wait": 0.2}
    )
    assert idle.json()["entries"] == [] and time.monotonic() - started >= 0.15


async def test_reset_forgets_everything_but_keeps_counters_moving(
    bot: Bot, emulator: EmulatorServer, sim: httpx.AsyncClient
) -> None:
    user_id = await new_user(sim)
    await sim.post(f"/sim/users/{user_id}/messages", json={"text": "before"})
    seq_before = emulator.state.last_seq
    assert (await sim.post("/sim/reset")).json() == {"ok": True}
    assert (await sim.get("/sim/users")).json()["users"] == []
    assert await bot.get_updates(timeout=0) == []
    again = await new_user(sim)
    response = await sim.post(f"/sim/users/{again}/messages", json={"text": "after"})
    assert response.json()["entry"]["seq"] > seq_before


async def test_aiogram_dispatcher_polls_and_replies_through_the_emulator(
    bot: Bot, sim: httpx.AsyncClient
) -> None:
    """What `make run` does without a token: the real Dispatcher long-polling the emulator."""
    dispatcher = Dispatcher()

    @dispatcher.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(
            f"<i>You said:</i> {html.quote(message.text or '')}", parse_mode="HTML"
        )

    polling = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    try:
        user_id = await new_user(sim)
        sent = await sim.post(f"/sim/users/{user_id}/messages", json={"text": "a < b"})
        after = sent.json()["entry"]["seq"]
        reply = await sim.get(f"/sim/users/{user_id}/chat", params={"after": after, "wait": 3})
        (entry,) = reply.json()["entries"]
        assert entry["text"] == "You said: a < b"
        assert entry["html"] == "<i>You said:</i> a &lt; b"
    finally:
        await dispatcher.stop_polling()
        await polling


async def test_stop_ends_open_long_polls_at_once() -> None:
    server = EmulatorServer()
    await server.start()
    async with httpx.AsyncClient(base_url=server.url) as client:
        poll = asyncio.create_task(
            client.get(f"/bot{EMULATOR_BOT_TOKEN}/getUpdates", params={"timeout": 30})
        )
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await server.stop()
        response = await poll
    assert response.json() == {"ok": True, "result": []}
    assert time.monotonic() - started < 2
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url


# --- the HTML parser on its own -----------------------------------------------------------


def test_html_parser_builds_entities_in_utf16_units() -> None:
    parsed = parse_html(
        '🎓 <a href="https://example.org/?a=1&amp;b=2">site</a> '
        '<pre><code class="language-python">x = 1</code></pre>'
        '<span class="tg-spoiler">s</span><blockquote expandable>q</blockquote>&#33;'
    )
    assert parsed.text == "🎓 site x = 1sq!"
    assert parsed.entities == [
        {"type": "text_link", "offset": 3, "length": 4, "url": "https://example.org/?a=1&b=2"},
        {"type": "pre", "offset": 8, "length": 5, "language": "python"},
        {"type": "spoiler", "offset": 13, "length": 1},
        {"type": "expandable_blockquote", "offset": 14, "length": 1},
    ]


def test_html_parser_errors_name_the_byte_offset() -> None:
    with pytest.raises(BotApiError) as caught:
        parse_html("é<x>")
    assert caught.value.description == (
        'Bad Request: can\'t parse entities: Unsupported start tag "x" at byte offset 2'
    )
    with pytest.raises(BotApiError, match="must have class"):
        parse_html("<span>x</span>")


def test_rendered_html_is_escaped_and_drops_unsafe_links() -> None:
    text = "<script> & link"
    entities = [
        {"type": "bold", "offset": 0, "length": 8},
        {"type": "text_link", "offset": 11, "length": 4, "url": "javascript:alert(1)"},
    ]
    assert render_html(text, entities) == "<b>&lt;script&gt;</b> &amp; link"
    overlapping = [
        {"type": "bold", "offset": 0, "length": 3},
        {"type": "italic", "offset": 2, "length": 3},
    ]
    assert render_html("abcde", overlapping) == "<b>ab<i>c</i></b><i>de</i>"
