"""Running counseldesk's parts in one process: web, bot, worker, emulator — any subset.

`counseldesk serve` runs all of them (development); `web`, `bot` and `worker` run one each
(production). One event loop, one database pool; Ctrl-C or SIGTERM stops every part cleanly.
Tests start the same `System` on free ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn
from aiogram import Bot, Dispatcher

from counseldesk.bot_app import configure_bot, create_dispatcher
from counseldesk.ops import collector
from counseldesk.runtime import Runtime
from counseldesk.telegram.bot_factory import create_bot
from counseldesk.telegram.emulator.server import EmulatorServer
from counseldesk.web.app import create_app
from counseldesk.web.server import EmbeddedServer
from counseldesk.worker import run_worker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parts:
    web: bool = False
    bot_polling: bool = False
    worker: bool = False
    emulator: bool = False


class System:
    """The chosen parts, started and stopped together."""

    def __init__(
        self, runtime: Runtime, parts: Parts, sockets: list[socket.socket] | None = None
    ) -> None:
        self.runtime = runtime
        self.parts = parts
        # Listening sockets opened before a fork (WEB_PROCESSES); None: bind HOST:PORT here.
        self.sockets = sockets
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.emulator: EmulatorServer | None = None
        self.bot: Bot | None = None
        self.dispatcher: Dispatcher | None = None
        self.web_server: EmbeddedServer | None = None

    @property
    def webhook(self) -> bool:
        return self.parts.web and self.runtime.settings.webhook_url is not None

    @property
    def web_url(self) -> str:
        assert self.web_server is not None and self.web_server.servers
        host, port = self.web_server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> None:
        settings = self.runtime.settings
        if self.parts.emulator:
            self.emulator = EmulatorServer(host=settings.emulator_host, port=settings.emulator_port)
            await self.emulator.start()
            # The dashboard's simulator finds the emulator through the settings.
            self.runtime.settings = settings = settings.model_copy(
                update={"emulator_port": self.emulator.port}
            )
            log.info("Telegram emulator on %s (no TELEGRAM_BOT_TOKEN set)", self.emulator.url)

        if self.parts.bot_polling or self.webhook:
            self.bot = create_bot(settings)
            self.dispatcher = create_dispatcher(self.runtime)
            await configure_bot(self.bot)

        if self.parts.web:
            app = create_app(self.runtime)
            if self.bot is not None and self.dispatcher is not None and self.webhook:
                app.state.telegram = (self.bot, self.dispatcher)
            config = uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level.lower(),
                proxy_headers=True,
                access_log=False,
                log_config=None,  # the process's logging, set up once by the CLI
            )
            self.web_server = EmbeddedServer(config, before_shutdown=self.runtime.bus.end_streams)
            self.tasks.append(asyncio.create_task(self.web_server.serve(self.sockets), name="web"))
            while not self.web_server.started:
                if self.tasks[-1].done():
                    await self.tasks[-1]  # raises what stopped it (a port in use, say)
                    raise RuntimeError("the web server stopped during start-up")
                await asyncio.sleep(0.02)

        if self.bot is not None and self.dispatcher is not None:
            if self.webhook:
                assert settings.webhook_url and settings.webhook_secret
                await self.bot.set_webhook(
                    settings.webhook_url,
                    secret_token=settings.webhook_secret.get_secret_value(),
                    drop_pending_updates=False,
                )
                log.info("bot receives updates by webhook at %s", settings.webhook_url)
            else:
                await self.bot.delete_webhook(drop_pending_updates=False)
                # One update at a time: handled as concurrent tasks, a student's quick messages
                # could be stored out of order. Production volume belongs on the webhook.
                polling = self.dispatcher.start_polling(
                    self.bot,
                    handle_signals=False,
                    close_bot_session=False,
                    polling_timeout=10,
                    handle_as_tasks=False,
                )
                self.tasks.append(asyncio.create_task(polling, name="bot"))

        if self.parts.worker:
            self.tasks.append(
                asyncio.create_task(run_worker(self.runtime, self.stopping), name="worker")
            )

    async def wait(self) -> None:
        """Until asked to stop, or until a part stops on its own (which is logged)."""
        stopper = asyncio.create_task(self.stopping.wait(), name="stop")
        done, _ = await asyncio.wait([stopper, *self.tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper and not task.cancelled() and task.exception() is not None:
                log.error("%s stopped with an error", task.get_name(), exc_info=task.exception())
        stopper.cancel()

    async def stop(self) -> None:
        log.info("shutting down")
        self.stopping.set()
        if self.web_server is not None:
            self.web_server.should_exit = True
        if self.dispatcher is not None and not self.webhook:
            # RuntimeError: polling had not started, or has ended.
            with contextlib.suppress(RuntimeError):
                await self.dispatcher.stop_polling()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.bot is not None:
            await self.bot.session.close()
        if self.emulator is not None:
            await self.emulator.stop()


async def run_parts(
    runtime: Runtime,
    parts: Parts,
    on_started: Callable[[System], None] | None = None,
    sockets: list[socket.socket] | None = None,
) -> None:
    system = System(runtime, parts, sockets)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, system.stopping.set)
    collector.tune_for_serving()
    try:
        await system.start()
        collector.freeze_startup_objects()
        if on_started is not None:
            on_started(system)
        await system.wait()
    finally:
        await system.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
