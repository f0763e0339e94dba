"""Telegram's HTML parse mode: source -> plain text + MessageEntity list, and back to safe HTML.

The parser follows TDLib's `parse_html` (what the Bot API server runs) closely enough that the
messages our bot produces are accepted here only if Telegram would accept them: an unescaped `<`,
an unsupported tag or a wrong nesting fails with the same "can't parse entities" description.
Offsets and lengths are in UTF-16 code units, as in the Bot API.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from counseldesk.telegram.emulator.errors import BotApiError, bad_request

_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SPACES = " \t\r\n\f\v"


@dataclass
class ParsedText:
    text: str
    entities: list[dict[str, Any]]


@dataclass
class _Open:
    tag: str
    argument: str
    offset: int  # UTF-16 offset in the output where the tag's content starts


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _error(detail: str) -> BotApiError:
    return bad_request(f"can't parse entities: {detail}")


class _Parser:
    def __init__(self, source: str):
        self.src = source
        self.pos = 0
        self.out: list[str] = []
        self.out16 = 0
        self.stack: list[_Open] = []
        self.entities: list[dict[str, Any]] = []

    def byte_offset(self, index: int) -> int:
        # TDLib reports positions as UTF-8 byte offsets into the source.
        return len(self.src[:index].encode("utf-8"))

    def peek(self, index: int) -> str:
        return self.src[index] if index < len(self.src) else ""

    def emit(self, chars: str) -> None:
        self.out.append(chars)
        self.out16 += utf16_len(chars)

    def run(self) -> ParsedText:
        while self.pos < len(self.src):
            char = self.src[self.pos]
            if char == "&":
                decoded, end = decode_entity(self.src, self.pos)
                if decoded is not None:
                    self.emit(decoded)
                    self.pos = end
                    continue
            if char != "<":
                self.emit(char)
                self.pos += 1
                continue
            if self.peek(self.pos + 1) == "/":
                self.end_tag()
            else:
                self.start_tag()
        if self.stack:
            raise _error(f'Can\'t find end tag corresponding to start tag "{self.stack[-1].tag}"')
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return ParsedText("".join(self.out), self.entities)

    def read_until_space_or_gt(self) -> str:
        start = self.pos
        while self.pos < len(self.src) and self.src[self.pos] not in _SPACES + ">":
            self.pos += 1
        return self.src[start : self.pos]

    def skip_spaces(self) -> None:
        while self.pos < len(self.src) and self.src[self.pos] in _SPACES:
            self.pos += 1

    def start_tag(self) -> None:
        begin = self.pos
        self.pos += 1
        tag = self.read_until_space_or_gt().lower()
        if self.pos >= len(self.src):
            raise _error(f"Unclosed start tag at byte offset {self.byte_offset(begin)}")
        if tag not in _TAG_TYPES:
            raise _error(f'Unsupported start tag "{tag}" at byte offset {self.byte_offset(begin)}')
        argument = ""
        while self.peek(self.pos) != ">":
            self.skip_spaces()
            if self.peek(self.pos) == ">":
                break
            name, value = self.attribute(tag, begin)
            argument = _tag_argument(tag, name, value) or argument
        self.pos += 1  # the '>'
        if tag == "span" and argument != "spoiler":
            raise _error(
                f'Tag "span" must have class "tg-spoiler" at byte offset {self.byte_offset(begin)}'
            )
        self.stack.append(_Open(tag, argument, self.out16))

    def attribute(self, tag: str, tag_begin: int) -> tuple[str, str]:
        start = self.pos
        while self.pos < len(self.src) and self.src[self.pos] not in _SPACES + "=>":
            self.pos += 1
        name = self.src[start : self.pos].lower()
        if not name:
            raise _error(
                f'Empty attribute name in the tag "{tag}" at byte offset {self.byte_offset(start)}'
            )
        self.skip_spaces()
        if self.peek(self.pos) != "=":
            if not self.peek(self.pos):
                raise _error(f"Unclosed start tag at byte offset {self.byte_offset(tag_begin)}")
            return name, ""  # a bare attribute, like <blockquote expandable>
        self.pos += 1
        self.skip_spaces()
        quote = self.peek(self.pos)
        if not quote:
            raise _error(f"Unclosed start tag at byte offset {self.byte_offset(tag_begin)}")
        if quote not in "'\"":
            start = self.pos
            while self.pos < len(self.src) and (
                self.src[self.pos].isalnum() or self.src[self.pos] in "-_."
            ):
                self.pos += 1
            if self.peek(self.pos) not in _SPACES + ">" or not self.peek(self.pos):
                raise _error(
                    f"Unexpected end of name token at byte offset {self.byte_offset(self.pos)}"
                )
            return name, self.src[start : self.pos].lower()
        self.pos += 1
        value: list[str] = []
        while self.pos < len(self.src) and self.src[self.pos] != quote:
            if self.src[self.pos] == "&":
                decoded, end = decode_entity(self.src, self.pos)
                if decoded is not None:
                    value.append(decoded)
                    self.pos = end
                    continue
            value.append(self.src[self.pos])
            self.pos += 1
        if self.pos >= len(self.src):
            raise _error(f"Unclosed start tag at byte offset {self.byte_offset(tag_begin)}")
        self.pos += 1  # closing quote
        return name, "".join(value)

    def end_tag(self) -> None:
        begin = self.pos
        if not self.stack:
            raise _error(f"Unexpected end tag at byte offset {self.byte_offset(begin)}")
        self.pos += 2
        name = self.read_until_space_or_gt().lower()
        self.skip_spaces()
        if self.peek(self.pos) != ">":
            raise _error(f"Unclosed end tag at byte offset {self.byte_offset(begin)}")
        self.pos += 1
        opened = self.stack[-1]
        if name and name != opened.tag:
            raise _error(
                f"Unmatched end tag at byte offset {self.byte_offset(begin)}, "
                f'expected "</{opened.tag}>", found "</{name}>"'
            )
        self.stack.pop()
        self.close(opened)

    def close(self, opened: _Open) -> None:
        length = self.out16 - opened.offset
        if length <= 0:
            return  # Telegram drops empty entities
        entity: dict[str, Any] = {
            "type": _TAG_TYPES[opened.tag],
            "offset": opened.offset,
            "length": length,
        }
        if opened.tag == "a":
            if not opened.argument:
                return
            entity["url"] = opened.argument
        elif opened.tag == "tg-emoji":
            if not opened.argument:
                return
            entity["custom_emoji_id"] = opened.argument
        elif opened.tag == "blockquote" and opened.argument:
            entity["type"] = "expandable_blockquote"
        elif opened.tag == "code" and opened.argument and self.directly_in_pre(opened):
            entity["language"] = opened.argument  # merged into the enclosing <pre> below
        elif opened.tag == "pre":
            inner = self.entities[-1] if self.entities else None
            if (
                inner is not None
                and inner["type"] == "code"
                and inner["offset"] == opened.offset
                and inner["length"] == length
            ):
                # <pre><code class="language-x">...</code></pre> is one pre entity with a language.
                self.entities.pop()
                if "language" in inner:
                    entity["language"] = inner["language"]
            elif inner is not None:
                inner.pop("language", None)  # a language only counts on the whole <pre> body
        self.entities.append(entity)

    def directly_in_pre(self, opened: _Open) -> bool:
        return (
            bool(self.stack)
            and self.stack[-1].tag == "pre"
            and self.stack[-1].offset == (opened.offset)
        )


def _tag_argument(tag: str, name: str, value: str) -> str:
    if tag == "a" and name == "href":
        return value
    if tag == "code" and name == "class" and value.startswith("language-"):
        return value.removeprefix("language-")
    if tag == "span" and name == "class" and value.startswith("tg-"):
        return value.removeprefix("tg-")
    if tag == "tg-emoji" and name == "emoji-id":
        return value
    if tag == "blockquote" and name == "expandable":
        return "1"
    return ""


def decode_entity(text: str, pos: int) -> tuple[str | None, int]:
    """Decode the HTML entity at text[pos] ('&'): (character, index after it), or (None, pos)
    when it is no entity Telegram knows, in which case the '&' is an ordinary character."""
    end = pos + 1
    if end < len(text) and text[end] == "#":
        end += 1
        base = 10
        if end < len(text) and text[end] in "xX":
            base = 16
            end += 1
        digits_start = end
        allowed = "0123456789abcdefABCDEF" if base == 16 else "0123456789"
        while end < len(text) and text[end] in allowed:
            end += 1
        if end == digits_start or end - digits_start > 7:
            return None, pos
        code = int(text[digits_start:end], base)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None, pos
        decoded = chr(code)
    else:
        while end < len(text) and text[end].isascii() and text[end].isalpha():
            end += 1
        found = _NAMED_ENTITIES.get(text[pos + 1 : end])
        if found is None:
            return None, pos
        decoded = found
    if end < len(text) and text[end] == ";":
        end += 1
    return decoded, end


def parse_html(source: str) -> ParsedText:
    """Parse parse_mode=HTML text; raises BotApiError(400 "can't parse entities") like Telegram."""
    return _Parser(source).run()


# --- rendering back to HTML (for the simulator page) -----------------------------------------

_SAFE_URL_SCHEMES = ("http://", "https://", "tg://", "mailto:")


def _open_tag(entity: dict[str, Any]) -> tuple[str, str]:
    kind = entity.get("type")
    simple = {"bold": "b", "italic": "i", "underline": "u", "strikethrough": "s", "code": "code"}
    if kind in simple:
        tag = simple[str(kind)]
        return f"<{tag}>", f"</{tag}>"
    if kind == "spoiler":
        return '<span class="tg-spoiler">', "</span>"
    if kind == "pre":
        language = str(entity.get("language") or "")
        attr = f' data-language="{escape(language)}"' if language else ""
        return f"<pre{attr}>", "</pre>"
    if kind in ("blockquote", "expandable_blockquote"):
        return "<blockquote>", "</blockquote>"
    if kind == "text_link":
        url = str(entity.get("url") or "")
        if url.lower().startswith(_SAFE_URL_SCHEMES):
            return f'<a href="{escape(url)}" rel="noopener noreferrer">', "</a>"
    return "", ""


def render_html(text: str, entities: list[dict[str, Any]]) -> str:
    """Text + entities -> HTML that is safe to insert into a page: every character of the text is
    escaped and only a fixed set of formatting tags (and http/https/tg/mailto links) is produced.
    Overlapping entities are closed and reopened so that the output is always well nested."""
    units: list[tuple[int, str]] = []  # (UTF-16 offset, character)
    offset = 0
    for char in text:
        units.append((offset, char))
        offset += 2 if ord(char) > 0xFFFF else 1
    ordered = sorted(
        (e for e in entities if e.get("length", 0) > 0),
        key=lambda e: (int(e.get("offset", 0)), -int(e.get("length", 0))),
    )
    parts: list[str] = []
    stack: list[tuple[int, dict[str, Any]]] = []  # (end offset, entity)
    next_entity = 0

    def close_until(position: int) -> None:
        while any(end <= position for end, _ in stack):
            reopen: list[tuple[int, dict[str, Any]]] = []
            while stack:
                end, entity = stack.pop()
                parts.append(_open_tag(entity)[1])
                if end <= position:
                    break
                reopen.append((end, entity))
            for item in reversed(reopen):
                parts.append(_open_tag(item[1])[0])
                stack.append(item)

    for position, char in [*units, (offset, "")]:
        close_until(position)
        while next_entity < len(ordered) and int(ordered[next_entity]["offset"]) <= position:
            entity = ordered[next_entity]
            next_entity += 1
            end = int(entity["offset"]) + int(entity["length"])
            if end > position:
                parts.append(_open_tag(entity)[0])
                stack.append((end, entity))
        parts.append(escape(char, quote=False))
    while stack:
        parts.append(_open_tag(stack.pop()[1])[1])
    return "".join(parts)
