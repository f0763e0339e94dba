"""Files in the emulator: what users and the bot upload, kept in memory under a byte budget."""

from __future__ import annotations

import mimetypes
import secrets
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

MediaKind = Literal["photo", "document", "voice"]
MEDIA_KINDS: tuple[MediaKind, ...] = ("photo", "document", "voice")

# Telegram lets a bot download files up to 20 MB through getFile.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024

_FOLDERS = {"photo": "photos", "document": "documents", "voice": "voice"}
_ID_PREFIXES = {"photo": "AgAC", "document": "BQAC", "voice": "AwAC"}
_DEFAULT_MIME = {
    "photo": "image/jpeg",
    "document": "application/octet-stream",
    "voice": "audio/ogg",
}


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: MediaKind
    content: bytes
    file_path: str
    file_name: str | None
    mime_type: str
    width: int = 0
    height: int = 0
    duration: int = 0

    @property
    def size(self) -> int:
        return len(self.content)

    def to_telegram(self) -> Any:
        """The value of Message.photo / .document / .voice."""
        base: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
        }
        if self.kind == "photo":
            return [{**base, "width": self.width, "height": self.height}]
        if self.kind == "voice":
            return {**base, "duration": self.duration, "mime_type": self.mime_type}
        document = {**base, "mime_type": self.mime_type}
        if self.file_name:
            document["file_name"] = self.file_name
        return document

    def to_file(self) -> dict[str, Any]:
        """The File object getFile returns."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
            "file_path": self.file_path,
        }

    def to_sim(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_name": self.file_name,
            "mime_type": self.mime_type,
            "file_size": self.size,
            "width": self.width,
            "height": self.height,
            "duration": self.duration,
            # Relative to the emulator's base URL.
            "url": f"/sim/files/{self.file_id}",
        }


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, GIF or JPEG image; (0, 0) when unknown. Enough for PhotoSize
    without an imaging library."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:2] == b"\xff\xd8":
        pos = 2
        while pos + 9 < len(data):
            if data[pos] != 0xFF:
                pos += 1
                continue
            marker = data[pos + 1]
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            # SOF0..SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC).
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return int(width), int(height)
            pos += 2 + length
    return 0, 0


class FileStore:
    """file_id -> file, oldest dropped first once the byte budget is spent."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._files: OrderedDict[str, StoredFile] = OrderedDict()
        self._by_path: dict[str, str] = {}
        self._bytes = 0
        self._counter = 0

    def add(
        self,
        kind: MediaKind,
        content: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        duration: int = 0,
    ) -> StoredFile:
        self._counter += 1
        mime = mime_type if mime_type and mime_type != "application/octet-stream" else None
        mime = mime or (mimetypes.guess_type(file_name)[0] if file_name else None)
        mime = mime or _DEFAULT_MIME[kind]
        extension = mimetypes.guess_extension(mime) or ".bin"
        if kind == "voice":
            extension = ".oga"
        width, height = image_size(content) if kind == "photo" else (0, 0)
        stored = StoredFile(
            file_id=_ID_PREFIXES[kind] + secrets.token_urlsafe(24),
            file_unique_id="AQAD" + secrets.token_urlsafe(9),
            kind=kind,
            content=content,
            file_path=f"{_FOLDERS[kind]}/file_{self._counter}{extension}",
            file_name=file_name if kind == "document" else None,
            mime_type=mime,
            width=width,
            height=height,
            duration=duration,
        )
        self._files[stored.file_id] = stored
        self._by_path[stored.file_path] = stored.file_id
        self._bytes += stored.size
        while self._bytes > self.max_bytes and len(self._files) > 1:
            _, dropped = self._files.popitem(last=False)
            self._by_path.pop(dropped.file_path, None)
            self._bytes -= dropped.size
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    def by_path(self, file_path: str) -> StoredFile | None:
        file_id = self._by_path.get(file_path)
        return self._files.get(file_id) if file_id else None

    def clear(self) -> None:
        self._files.clear()
        self._by_path.clear()
        self._bytes = 0
