"""`python -m counseldesk.telegram.emulator [--host H] [--port P]`: the emulator on its own."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from counseldesk.telegram.emulator.server import EmulatorServer


async def _serve(host: str, port: int) -> None:
    server = EmulatorServer(host, port)
    await server.start()
    print(f"Telegram Bot API emulator at {server.url} (control API: {server.url}/sim/docs)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0: any free port")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper())
    asyncio.run(_serve(args.host, args.port))


if __name__ == "__main__":
    main()
