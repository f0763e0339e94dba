"""Bot API methods about the bot itself: identity, commands, getUpdates and the webhook."""

from __future__ import annotations

import re
from typing import Any

from counseldesk.telegram.emulator.context import CallContext, Handler
from counseldesk.telegram.emulator.errors import bad_request

_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
# Telegram ends a long poll after at most 50 seconds, whatever the bot asked for.
MAX_POLL_TIMEOUT = 50.0


async def get_me(ctx: CallContext) -> dict[str, Any]:
    return {
        **ctx.state.bot_user(),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


def _allowed_updates(ctx: CallContext) -> list[str] | None:
    allowed = ctx.params.get_json("allowed_updates", error="can't parse allowed_updates")
    if allowed is None:
        return None
    if not isinstance(allowed, list) or not all(isinstance(kind, str) for kind in allowed):
        raise bad_request("can't parse allowed_updates")
    return allowed


async def get_updates(ctx: CallContext) -> list[dict[str, Any]]:
    limit = ctx.params.get_int("limit") or 100
    timeout = ctx.params.get_float("timeout") or 0.0
    return await ctx.state.queue.get_updates(
        offset=ctx.params.get_int("offset"),
        limit=min(max(limit, 1), 100),
        wait=min(max(timeout, 0.0), MAX_POLL_TIMEOUT),
        allowed_updates=_allowed_updates(ctx),
    )


async def set_webhook(ctx: CallContext) -> bool:
    url = (ctx.params.get_str("url") or "").strip()
    drop = ctx.params.get_bool("drop_pending_updates")
    if not url:
        ctx.description = ctx.state.queue.delete_webhook(drop_pending_updates=drop)
        return True
    # Telegram insists on HTTPS; on loopback the emulator accepts plain HTTP as well.
    if not url.lower().startswith(("http://", "https://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = ctx.params.get_str("secret_token")
    if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
        raise bad_request("secret token contains unallowed characters")
    max_connections = ctx.params.get_int("max_connections") or 40
    ctx.description = ctx.state.queue.set_webhook(
        url,
        secret_token=secret,
        max_connections=min(max(max_connections, 1), 100),
        allowed_updates=_allowed_updates(ctx),
        drop_pending_updates=drop,
    )
    ctx.on_webhook_set()
    return True


async def delete_webhook(ctx: CallContext) -> bool:
    drop = ctx.params.get_bool("drop_pending_updates")
    ctx.description = ctx.state.queue.delete_webhook(drop_pending_updates=drop)
    return True


async def get_webhook_info(ctx: CallContext) -> dict[str, Any]:
    return ctx.state.queue.webhook_info()


def _commands_key(ctx: CallContext) -> tuple[str, str]:
    scope = ctx.params.get_json("scope", error="can't parse BotCommandScope JSON object")
    if scope is not None and not isinstance(scope, dict):
        raise bad_request("can't parse BotCommandScope JSON object")
    return ctx.state.commands_key(scope, ctx.params.get_str("language_code"))


async def set_my_commands(ctx: CallContext) -> bool:
    commands = ctx.params.get_json("commands", error="can't parse commands JSON object")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("can't parse commands JSON object")
    for command in commands:
        if not isinstance(command, dict):
            raise bad_request("can't parse commands JSON object")
        if not _COMMAND.fullmatch(str(command.get("command", "")).removeprefix("/")):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(command.get("description", ""))) <= 256:
            raise bad_request("command description must be non-empty")
    key = _commands_key(ctx)
    stored = [
        {"command": str(c["command"]).removeprefix("/"), "description": str(c["description"])}
        for c in commands
    ]
    if stored:
        ctx.state.commands[key] = stored
    else:
        ctx.state.commands.pop(key, None)
    return True


async def delete_my_commands(ctx: CallContext) -> bool:
    ctx.state.commands.pop(_commands_key(ctx), None)
    return True


async def get_my_commands(ctx: CallContext) -> list[dict[str, Any]]:
    return list(ctx.state.commands.get(_commands_key(ctx), []))


HANDLERS: dict[str, Handler] = {
    "getMe": get_me,
    "getUpdates": get_updates,
    "setWebhook": set_webhook,
    "deleteWebhook": delete_webhook,
    "getWebhookInfo": get_webhook_info,
    "setMyCommands": set_my_commands,
    "deleteMyCommands": delete_my_commands,
    "getMyCommands": get_my_commands,
}
