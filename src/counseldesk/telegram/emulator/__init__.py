"""A Telegram Bot API emulator on loopback: what `make run` talks to without a bot token, what the
end-to-end tests drive the bot through, and what the dashboard's student simulator chats over.

`EmulatorServer` runs it; `EmulatorState` is its in-memory world; `create_app` is the bare ASGI
app. The Bot API is served at /bot<token>/<method>, files at /file/bot<token>/<path>, the control
API at /sim/ (OpenAPI at /sim/docs).
"""

from counseldesk.telegram.emulator.app import create_app
from counseldesk.telegram.emulator.server import EmulatorServer
from counseldesk.telegram.emulator.state import EmulatorConfig, EmulatorState, UserAction

__all__ = ["EmulatorConfig", "EmulatorServer", "EmulatorState", "UserAction", "create_app"]
