"""Running the emulator: a uvicorn server in a task on the caller's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType

import uvicorn

from counseldesk.telegram.emulator.app import create_app
from counseldesk.telegram.emulator.state import EmulatorState


class _EmbeddedUvicorn(uvicorn.Server):
    """Leaves signals to the host process (the CLI, pytest), which decides when we stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmulatorServer:
    """The Bot API emulator on loopback. `port=0` picks a free port; `url` tells which.

    Use `await start()` / `await stop()` or `async with EmulatorServer() as server:`. `state` is
    the live EmulatorState, for tests that inspect or drive it directly.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        state: EmulatorState | None = None,
        log_level: str | None = None,
    ):
        self.host = host
        self.requested_port = port
        self.state = state if state is not None else EmulatorState()
        self.app = create_app(self.state)
        self.log_level = log_level
        self._server: _EmbeddedUvicorn | None = None
        self._task: asyncio.Task[None] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not running")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
        # without it Nagle + delayed ACKs add ~40 ms to every response.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.requested_port))
        except OSError:
            sock.close()
            raise
        return sock

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the emulator is already running")
        # Binding here, not in uvicorn, makes "port in use" an exception of start() and tells us
        # the port the OS picked for port 0.
        sock = self._bind()
        self._port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            lifespan="on",
            access_log=False,
            # None: leave the host process's logging alone (uvicorn would reconfigure it).
            log_config=None,
            log_level=self.log_level,
            timeout_graceful_shutdown=2,
        )
        self.state.reopen()
        self._server = _EmbeddedUvicorn(config)
        self._task = asyncio.create_task(
            self._server.serve(sockets=[sock]), name="telegram-emulator"
        )
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what went wrong
                raise RuntimeError("the emulator stopped while starting")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        task, server = self._task, self._server
        if task is None or server is None:
            return
        # Long polls would hold uvicorn's graceful shutdown until their timeout: end them first.
        self.state.close()
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=5)
        except TimeoutError:
            server.force_exit = True
            await task
        finally:
            self._task = None
            self._server = None
            self._port = None

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
