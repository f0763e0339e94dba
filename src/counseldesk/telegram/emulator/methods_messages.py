"""Bot API methods on text messages: send, edit, delete, callback answers, chat actions."""

from __future__ import annotations

from typing import Any

from counseldesk.telegram.emulator import compose
from counseldesk.telegram.emulator.context import CallContext, Handler
from counseldesk.telegram.emulator.errors import bad_request
from counseldesk.telegram.emulator.records import Chat, StoredMessage

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)


async def send_message(ctx: CallContext) -> dict[str, Any]:
    chat = ctx.state.chat_for_bot(ctx.chat_id())
    text = compose.message_text(ctx)
    markup = compose.reply_markup(ctx)
    message = ctx.state.add_bot_message(
        chat,
        body=text.text,
        entities=text.entities,
        raw_body=text.raw,
        parse_mode=text.parse_mode,
        reply_markup=markup,
        reply_to=compose.reply_target(ctx, chat),
        link_preview_options=compose.link_preview(ctx),
    )
    return message.to_telegram()


def _editable(ctx: CallContext) -> tuple[Chat, StoredMessage]:
    if ctx.params.has("inline_message_id"):
        raise bad_request("the emulator has no inline messages; use chat_id and message_id")
    chat = ctx.state.chat_for_bot(ctx.chat_id(), initiating=False)
    message = chat.messages.get(ctx.message_id())
    if message is None or message.deleted:
        raise bad_request("message to edit not found")
    if message.direction != "out":
        raise bad_request("message can't be edited")
    return chat, message


def _new_markup(ctx: CallContext, message: StoredMessage) -> dict[str, Any] | None:
    markup = compose.reply_markup(ctx, inline_only=True)
    current = message.reply_markup
    if markup is None and current is not None and "inline_keyboard" not in current:
        return current  # a reply keyboard belongs to the chat, editing does not remove it
    # Telegram removes the inline keyboard of an edited message unless it is sent again.
    return markup


async def edit_message_text(ctx: CallContext) -> dict[str, Any]:
    chat, message = _editable(ctx)
    if message.media is not None:
        raise bad_request("there is no text in the message to edit")
    text = compose.message_text(ctx)
    markup = _new_markup(ctx, message)
    if (text.text, text.entities, markup) == (message.body, message.entities, message.reply_markup):
        raise bad_request(NOT_MODIFIED)
    message.body, message.entities = text.text, text.entities
    message.raw_body, message.parse_mode = text.raw, text.parse_mode
    message.reply_markup = markup
    link_preview = compose.link_preview(ctx)
    if link_preview is not None:
        message.link_preview_options = link_preview
    ctx.state.message_changed(chat, message, edited=True)
    return message.to_telegram()


async def edit_message_caption(ctx: CallContext) -> dict[str, Any]:
    chat, message = _editable(ctx)
    if message.media is None:
        raise bad_request("there is no caption in the message to edit")
    caption = compose.caption(ctx)
    markup = _new_markup(ctx, message)
    body = caption.text or None
    if (body, caption.entities, markup) == (message.body, message.entities, message.reply_markup):
        raise bad_request(NOT_MODIFIED)
    message.body, message.entities = body, caption.entities
    message.raw_body, message.parse_mode = caption.raw, caption.parse_mode
    message.reply_markup = markup
    ctx.state.message_changed(chat, message, edited=True)
    return message.to_telegram()


async def edit_message_reply_markup(ctx: CallContext) -> dict[str, Any]:
    chat, message = _editable(ctx)
    markup = compose.reply_markup(ctx, inline_only=True)
    if markup == message.reply_markup:
        raise bad_request(NOT_MODIFIED)
    message.reply_markup = markup
    ctx.state.message_changed(chat, message, edited=True)
    return message.to_telegram()


async def delete_message(ctx: CallContext) -> bool:
    chat = ctx.state.chat_for_bot(ctx.chat_id(), initiating=False)
    message = chat.messages.get(ctx.message_id())
    if message is None or message.deleted:
        raise bad_request("message to delete not found")
    message.deleted = True
    ctx.state.message_changed(chat, message, edited=False)
    return True


async def answer_callback_query(ctx: CallContext) -> bool:
    query_id = ctx.params.get_str("callback_query_id")
    if not query_id:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    ctx.state.answer_callback(
        query_id,
        {
            "text": ctx.params.get_str("text"),
            "show_alert": ctx.params.get_bool("show_alert"),
            "url": ctx.params.get_str("url"),
            "cache_time": ctx.params.get_int("cache_time") or 0,
        },
    )
    return True


async def send_chat_action(ctx: CallContext) -> bool:
    chat = ctx.state.chat_for_bot(ctx.chat_id())
    action = ctx.params.get_str("action")
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    ctx.state.add_event(chat, "chat_action", "out", {"action": action})
    return True


HANDLERS: dict[str, Handler] = {
    "sendMessage": send_message,
    "editMessageText": edit_message_text,
    "editMessageCaption": edit_message_caption,
    "editMessageReplyMarkup": edit_message_reply_markup,
    "deleteMessage": delete_message,
    "answerCallbackQuery": answer_callback_query,
    "sendChatAction": send_chat_action,
}
