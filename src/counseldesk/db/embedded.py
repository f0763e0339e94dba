"""Embedded PostgreSQL for development: the same server software, zero setup.

When DATABASE_URL is unset, counseldesk starts (or joins) a PostgreSQL server whose data lives in
``VAR_DIR/pgdata``. Several counseldesk processes may share it: the first one starts it, the last
one to leave stops it (pgserver keeps that count), so `counseldesk create-counselor` works while
`make run` is running.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "counseldesk"


class EmbeddedPostgres:
    def __init__(self, var_dir: Path, database: str = EMBEDDED_DATABASE) -> None:
        self.pgdata = (var_dir / "pgdata").resolve()
        self.database = database
        self._server: Any = None

    def start(self) -> str:
        """Start or join the server, make sure the database exists, return its asyncpg URL."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        log.info("embedded PostgreSQL in %s", self.pgdata)
        # pgserver warns about its own imports and about a missing XDG_RUNTIME_DIR (it then
        # uses /tmp, which is fine for a development server).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

            self._server = get_server(self.pgdata, cleanup_mode="stop")
        exists = self._server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';"  # noqa: S608 - constant
        )
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{self.database}";')
        return self.url

    @property
    def socket_dir(self) -> str:
        uri: str = self._server.get_uri()
        return uri.split("host=", 1)[1]

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@/{self.database}?host={quote(self.socket_dir)}"

    def stop(self) -> None:
        """Leave the server; it stops when no other counseldesk process still uses it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
