"""The message catalog: every text a student reads, one TOML file per language.

Texts are HTML (Telegram's HTML parse mode) and trusted; every value filled into a placeholder is
escaped here, so a student named "<b>Tom</b>" or "a_b*c" can never break a message.
A new language is a new file in `locales/` with the same keys; missing keys fall back to English.
"""

from __future__ import annotations

import html
import tomllib
from functools import cache
from pathlib import Path
from string import Formatter

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DEFAULT_LANGUAGE = "en"


class _EscapingFormatter(Formatter):
    def format_field(self, value: object, format_spec: str) -> str:
        formatted = super().format_field(value, format_spec)
        return formatted if isinstance(value, int | float) else html.escape(formatted, quote=False)


_formatter = _EscapingFormatter()


def _flatten(table: dict[str, object], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value).strip("\n")
    return flat


@cache
def _load(language: str) -> dict[str, str]:
    path = LOCALES_DIR / f"{language}.toml"
    if not path.is_file():
        return {}
    with path.open("rb") as fh:
        return _flatten(tomllib.load(fh))


def available_languages() -> list[str]:
    return sorted(p.stem for p in LOCALES_DIR.glob("*.toml"))


def t(key: str, language: str | None = None, /, **values: object) -> str:
    """The text for `key` in `language` (falling back to English), placeholders filled, escaped."""
    lang = (language or DEFAULT_LANGUAGE).split("-")[0].lower()
    template = _load(lang).get(key) or _load(DEFAULT_LANGUAGE).get(key)
    if template is None:
        raise KeyError(f"no text {key!r} in the message catalog")
    return _formatter.vformat(template, (), values)
