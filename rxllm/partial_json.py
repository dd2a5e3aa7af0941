"""``PartialJsonParser``: JSON text fed in pieces, the value so far after each piece.

A model streams a JSON answer a few characters at a time; a UI wants the object
as it grows (a form filling in), not only at the end::

    parser = PartialJsonParser()
    parser.feed('{"name": "Ada')       # {'name': 'Ada'}
    parser.feed(' Lovelace", "ag')     # {'name': 'Ada Lovelace'}
    parser.feed('e": 3')               # None: nothing new to show (the number may go on)
    parser.feed('6}')                  # {'name': 'Ada Lovelace', 'age': 36}
    parser.finish()                    # {'name': 'Ada Lovelace', 'age': 36}

The parser keeps its state between pieces and reads each character once, so a
whole stream costs time linear in its length (re-parsing the text so far on
every piece, as jiter's and partial-json-parser's partial modes are used,
costs time quadratic in it; ``benchmarks/partial_json.py`` measures both).

What a partial value holds:

* an open string shows its text so far (an escape split across pieces, ``\\u00``
  or half a surrogate pair, waits for the rest); an open object or array shows
  the members or items it holds so far, the open one last;
* a number shows once it is complete: when a character after it ends it, or at
  ``finish()`` (``12`` may still become ``123``); ``true``, ``false`` and ``null``
  show once their last letter arrives;
* an object member shows once its value has started: a key alone is not shown.

``feed`` returns the new partial value, or ``None`` when the piece changed
nothing a reader would see (whitespace, a key, half a number); so a document
that is the bare literal ``null`` shows only through ``finish()``.

Each value returned is its own object, and the ones returned earlier are never
changed afterwards. Objects and arrays that closed are shared between
successive values (never copied again); the objects and arrays still open, on
the path from the root to what is being read, are copied shallowly for each new
value, and an open string is joined anew: that work is proportional to the
width of the open containers and the length of the open string, not to the
size of the document.

Malformed text raises ``PartialJsonError`` (a ``ValueError``) with the
character position, as soon as the offending character arrives; the parser
then stays failed. ``finish()`` raises it too when the text ended before the
value was complete. It accepts what JSON (RFC 8259) accepts and what
``msgspec.json.decode`` accepts, and gives the same values.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

__all__ = ["PartialJsonError", "PartialJsonParser"]

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')
# Anything that could still grow into a number; a number that ended must match _NUMBER whole.
_NUMBER_PREFIX = re.compile(r"-?[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_LITERALS: dict[str, tuple[str, Any]] = {"t": ("true", True), "f": ("false", False), "n": ("null", None)}

# Where the parser is: what the next character may be.
_VALUE = 0  # a value (at the start, after ':' or after ',' in an array)
_VALUE_OR_CLOSE = 1  # after '[': a value or ']'
_KEY_OR_CLOSE = 2  # after '{': a key or '}'
_KEY = 3  # after ',' in an object
_COLON = 4
_AFTER_VALUE = 5  # ',' or the container's closer
_STRING = 6  # inside a string value
_KEY_STRING = 7  # inside a key
_DONE = 8  # the top-level value is complete: only whitespace may follow


class PartialJsonError(ValueError):
    """The text is not JSON; ``position`` is the index of the character where that showed."""

    def __init__(self, message: str, position: int) -> None:
        self.position = position
        super().__init__(message)


class PartialJsonParser:
    """The state of one JSON text read in pieces (see the module docstring)."""

    __slots__ = (
        "_base",
        "_changed",
        "_containers",
        "_error",
        "_keys",
        "_pending",
        "_pieces",
        "_root",
        "_state",
    )

    def __init__(self) -> None:
        self._state = _VALUE
        self._containers: list[dict[str, Any] | list[Any]] = []  # the open ones, root first
        self._keys: list[str | None] = []  # per open object: the key of its member being read
        self._pieces: list[str] = []  # the open string's (or key's) text
        self._pending = ""  # the start of a token that the next piece completes
        self._root: Any = None
        self._base = 0  # the position of the current text's first character in the whole text
        self._changed = False
        self._error: PartialJsonError | None = None

    @property
    def done(self) -> bool:
        """Whether the top-level value is complete (only whitespace may follow)."""
        return self._state == _DONE

    def feed(self, text: str) -> Any | None:
        """Read the next piece; return the new partial value, or ``None`` if nothing visible changed."""
        if self._error is not None:
            raise self._error
        if self._pending:
            text = self._pending + text
            self._pending = ""
        self._changed = False
        try:
            consumed = self._read(text)
        except PartialJsonError as error:
            self._error = error
            raise
        self._pending = text[consumed:]
        self._base += consumed
        return self._snapshot() if self._changed else None

    def finish(self) -> Any:
        """The whole value, once the text has ended; ``PartialJsonError`` if it is not complete."""
        if self._error is not None:
            raise self._error
        pending, self._pending = self._pending, ""
        try:
            if pending:
                if pending[0] == "-" or "0" <= pending[0] <= "9":
                    self._number(pending, 0, len(pending))
                else:
                    what = "an escape" if self._state in (_STRING, _KEY_STRING) else f"{pending!r}"
                    raise PartialJsonError(f"the JSON text ended inside {what}", self._base)
            if self._state != _DONE:
                if self._state == _VALUE and not self._containers:
                    raise PartialJsonError("the JSON text holds no value", self._base)
                raise PartialJsonError("the JSON text ended before its value was complete", self._base)
        except PartialJsonError as error:
            self._error = error
            raise
        return self._root

    # -- reading ------------------------------------------------------------------------

    def _read(self, text: str) -> int:
        """Consume ``text`` from the start; return how much of it was consumed (the rest waits)."""
        i, n = 0, len(text)
        pieces = self._pieces
        while i < n:
            state = self._state
            if state == _STRING or state == _KEY_STRING:
                j = _PLAIN.match(text, i).end()  # type: ignore[union-attr]  # matches the empty string
                if j > i:
                    pieces.append(text[i:j])
                    if state == _STRING:
                        self._changed = True
                    i = j
                    if i == n:
                        break
                c = text[i]
                if c == '"':
                    text_value = "".join(pieces)
                    pieces.clear()
                    if state == _STRING:
                        self._add(text_value, shown=True)  # it showed while open
                    else:
                        self._keys[-1] = text_value
                        self._state = _COLON
                    i += 1
                elif c == "\\":
                    j = self._escape(text, i, n)
                    if j < 0:
                        return i  # the escape is split: it waits for the next piece
                    i = j
                else:
                    self._fail(f"a control character ({ord(c):#04x}) inside a string", i)
                continue
            c = text[i]
            if c == " " or c == "\n" or c == "\t" or c == "\r":
                i = _WHITESPACE.match(text, i).end()  # type: ignore[union-attr]
                continue
            if state == _AFTER_VALUE:
                top = self._containers[-1]
                if c == ",":
                    self._state = _KEY if type(top) is dict else _VALUE
                elif (c == "}" and type(top) is dict) or (c == "]" and type(top) is list):
                    self._close()
                else:
                    closer = "}" if type(top) is dict else "]"
                    self._fail(f"expected ',' or '{closer}', got {c!r}", i)
                i += 1
            elif state == _VALUE or state == _VALUE_OR_CLOSE:
                if c == '"':
                    self._state = _STRING
                    self._changed = True  # an empty string appears
                    i += 1
                elif c == "{":
                    self._open({}, _KEY_OR_CLOSE)
                    i += 1
                elif c == "[":
                    self._open([], _VALUE_OR_CLOSE)
                    i += 1
                elif c == "-" or "0" <= c <= "9":
                    j = _NUMBER_PREFIX.match(text, i).end()  # type: ignore[union-attr]
                    if j == n:
                        return i  # the number may go on in the next piece
                    self._number(text, i, j)
                    i = j
                elif c in _LITERALS:
                    word, value = _LITERALS[c]
                    if text.startswith(word, i):
                        self._add(value)
                        i += len(word)
                    elif n - i < len(word) and word.startswith(text[i:]):
                        return i  # the rest of the word is in the next piece
                    else:
                        self._fail(f"expected {word!r}", i)
                elif c == "]" and state == _VALUE_OR_CLOSE:
                    self._close()
                    i += 1
                elif c == "]":
                    self._fail("a trailing comma before ']'", i)
                else:
                    self._fail(f"expected a value, got {c!r}", i)
            elif state == _KEY_OR_CLOSE or state == _KEY:
                if c == '"':
                    self._state = _KEY_STRING
                elif c == "}" and state == _KEY_OR_CLOSE:
                    self._close()
                elif c == "}":
                    self._fail("a trailing comma before '}'", i)
                else:
                    self._fail(f"expected a key (a string), got {c!r}", i)
                i += 1
            elif state == _COLON:
                if c != ":":
                    self._fail(f"expected ':' after a key, got {c!r}", i)
                self._state = _VALUE
                i += 1
            else:  # _DONE
                self._fail(f"extra data after the JSON value: {c!r}", i)
        return n

    def _escape(self, text: str, i: int, n: int) -> int:
        """The escape at ``text[i]`` (a backslash) appended; the index after it, or -1 if it is split."""
        if i + 1 == n:
            return -1
        kind = text[i + 1]
        if kind != "u":
            char = _ESCAPES.get(kind)
            if char is None:
                self._fail(f"an invalid escape {text[i : i + 2]!r}", i)
            self._append(char)
            return i + 2
        if i + 6 > n:
            if not _HEX4.match(text[i + 2 :] + "0000"[: 6 - n + i]):
                self._fail("an invalid \\u escape", i)
            return -1
        code = self._hex(text, i)
        if 0xDC00 <= code <= 0xDFFF:
            self._fail("an unpaired UTF-16 surrogate", i)
        if not 0xD800 <= code <= 0xDBFF:
            self._append(chr(code))
            return i + 6
        # A high surrogate: the low one must follow as \uDC00-\uDFFF.
        rest = text[i + 6 : i + 8]
        if rest != "\\u"[: len(rest)]:
            self._fail("an unpaired UTF-16 surrogate", i)
        if i + 12 > n:
            return -1
        low = self._hex(text, i + 6)
        if not 0xDC00 <= low <= 0xDFFF:
            self._fail("an unpaired UTF-16 surrogate", i)
        self._append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
        return i + 12

    def _hex(self, text: str, i: int) -> int:
        digits = text[i + 2 : i + 6]
        if not _HEX4.fullmatch(digits):
            self._fail("an invalid \\u escape", i)
        return int(digits, 16)

    def _append(self, char: str) -> None:
        self._pieces.append(char)
        if self._state == _STRING:
            self._changed = True

    def _number(self, text: str, i: int, j: int) -> None:
        token = text[i:j]
        if _NUMBER.fullmatch(token) is None:
            self._fail(f"an invalid number {token!r}", i)
        if "." in token or "e" in token or "E" in token:
            value = float(token)
            if value in (float("inf"), float("-inf")):
                self._fail(f"a number out of range {token!r}", i)
            self._add(value)
        else:
            self._add(int(token))

    # -- building -----------------------------------------------------------------------

    def _add(self, value: Any, *, shown: bool = False) -> None:
        """A complete value: the root, or the next item or member of the innermost open container.

        ``shown``: the value already showed while it was open (a string, a container), so the
        partial value a reader sees does not change now.
        """
        if not shown:
            self._changed = True
        containers = self._containers
        if not containers:
            self._root = value
            self._state = _DONE
            return
        top = containers[-1]
        if type(top) is dict:
            key = self._keys[-1]
            assert key is not None
            top[key] = value
        else:
            top.append(value)  # type: ignore[union-attr]
        self._state = _AFTER_VALUE

    def _open(self, container: dict[str, Any] | list[Any], state: int) -> None:
        self._containers.append(container)
        self._keys.append(None)
        self._state = state
        self._changed = True  # an empty container appears

    def _close(self) -> None:
        # The container is complete: from now on it is only shared, never changed.
        container = self._containers.pop()
        self._keys.pop()
        self._add(container, shown=True)

    def _fail(self, what: str, i: int) -> NoReturn:
        raise PartialJsonError(f"malformed JSON at character {self._base + i}: {what}", self._base + i)

    def _snapshot(self) -> Any:
        """The value so far: the open containers copied shallowly, each holding its open child."""
        has_child = self._state == _STRING
        child: Any = None
        if has_child:
            pieces = self._pieces
            if len(pieces) > 1:
                pieces[:] = ["".join(pieces)]
            child = pieces[0] if pieces else ""
        containers, keys = self._containers, self._keys
        for depth in range(len(containers) - 1, -1, -1):
            copy = containers[depth].copy()
            if has_child:
                if type(copy) is dict:
                    copy[keys[depth]] = child  # type: ignore[index]
                else:
                    copy.append(child)  # type: ignore[union-attr]
            child = copy
            has_child = True
        return child if has_child else self._root
