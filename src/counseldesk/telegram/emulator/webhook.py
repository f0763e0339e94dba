"""Pushing updates to the bot's webhook, one at a time and in order, like Telegram.

A failed delivery (connection error, timeout, non-2xx answer) is retried with a doubling pause;
after `webhook_max_attempts` the update is dropped and the error shows in getWebhookInfo, so a
broken webhook cannot wedge the queue forever. A 2xx answer may carry a Bot API call (aiogram's
"reply into webhook"), which is executed as if the bot had made it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx

from counseldesk.telegram.emulator.botapi import call_method
from counseldesk.telegram.emulator.params import params_from_body
from counseldesk.telegram.emulator.state import EmulatorState
from counseldesk.telegram.emulator.updates import Webhook

logger = logging.getLogger(__name__)

MAX_RETRY_DELAY = 2.0


class WebhookDelivery:
    def __init__(self, state: EmulatorState):
        self.state = state
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        """Start delivering (after setWebhook); a no-op while delivery runs."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="telegram-emulator-webhook"
            )

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        state = self.state
        # trust_env=False: the webhook is on loopback; a developer's HTTP(S)_PROXY must not apply.
        async with httpx.AsyncClient(trust_env=False) as client:
            while not state.closing:
                hook = state.queue.webhook
                if hook is None:
                    return  # webhook deleted or emulator reset; setWebhook starts us again
                if not state.queue.pending:
                    await state.queue.changed.wait(None)
                    continue
                await self._deliver(client, hook, state.queue.pending[0])

    async def _deliver(self, client: httpx.AsyncClient, hook: Webhook, update: Any) -> None:
        state = self.state
        delay = state.config.webhook_retry_delay
        attempts = state.config.webhook_max_attempts
        for attempt in range(1, attempts + 1):
            if (
                state.queue.webhook is not hook
                or not state.queue.pending
                or state.queue.pending[0] is not update
            ):
                return  # the webhook changed or the queue was cleared meanwhile
            error = await self._post(client, hook, update)
            if error is None:
                state.queue.delivered(update["update_id"])
                return
            hook.last_error_date = state.now()
            hook.last_error_message = error
            if attempt < attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
        logger.warning(
            "webhook %s refused update %s %d times (%s); dropped",
            hook.url,
            update["update_id"],
            attempts,
            hook.last_error_message,
        )
        state.queue.delivered(update["update_id"])

    async def _post(self, client: httpx.AsyncClient, hook: Webhook, update: Any) -> str | None:
        """Deliver once: None on success, else the error getWebhookInfo reports."""
        headers = {}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        try:
            response = await client.post(
                hook.url, json=update, headers=headers, timeout=self.state.config.webhook_timeout
            )
        except httpx.TimeoutException:
            return "Read timeout expired"
        except httpx.HTTPError as exc:
            return f"Connection failed: {type(exc).__name__}: {exc}"
        if not 200 <= response.status_code < 300:
            return (
                f"Wrong response from the webhook: {response.status_code} {response.reason_phrase}"
            )
        await self._run_reply(response)
        return None

    async def _run_reply(self, response: httpx.Response) -> None:
        content_type = response.headers.get("content-type", "")
        if not response.content or not content_type.startswith(
            ("application/json", "multipart/form-data")
        ):
            return
        try:
            params = await params_from_body(content_type, response.content)
        except Exception:  # a webhook answer we cannot read is ignored, as Telegram does
            logger.warning("unreadable webhook answer ignored", exc_info=True)
            return
        method = params.values.pop("method", None)
        if isinstance(method, str) and method:
            await call_method(
                self.state, self.state.bot_token, method, params, on_webhook_set=self.ensure_running
            )
