r"""A string that matches a JSON Schema ``pattern``, for the offline provider's structured output.

It walks the pattern as Python's own regular-expression parser reads it and writes, for each
piece, the first character a class allows and the fewest repetitions (more when the string must
be longer). Conditionals and syntax Python does not share with ECMA-262 (``\p{L}``) give no
sample, and the caller keeps its own value. Every sample is checked with ``re.search`` before use.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

# The parser behind ``re`` (public as ``sre_parse`` before 3.11); read through importlib, as it
# has no type stubs.
_parser: Any = importlib.import_module("re._parser")

_CATEGORY_CHARS = {
    "CATEGORY_DIGIT": "0",
    "CATEGORY_NOT_DIGIT": "a",
    "CATEGORY_WORD": "a",
    "CATEGORY_NOT_WORD": " ",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "a",
}
_CATEGORY_TESTS = {
    "CATEGORY_DIGIT": re.compile(r"\d"),
    "CATEGORY_NOT_DIGIT": re.compile(r"\D"),
    "CATEGORY_WORD": re.compile(r"\w"),
    "CATEGORY_NOT_WORD": re.compile(r"\W"),
    "CATEGORY_SPACE": re.compile(r"\s"),
    "CATEGORY_NOT_SPACE": re.compile(r"\S"),
}
_CANDIDATES = "aA0 _-x.Z9"  # tried in turn for a negated class
_STRETCHES = (0, 1, 2, 4, 8, 16, 64)  # extra repetitions tried until the length fits
MAX_SAMPLE = 10_000  # characters: a longer sample is not attempted


class _Unsupported(Exception):
    pass


def sample(pattern: str, min_length: int = 0, max_length: int | None = None) -> str | None:
    """A string matching ``pattern`` (``re.search``) within the lengths, or None."""
    try:
        compiled = re.compile(pattern)
        parsed = _parser.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return None
    for stretch in _STRETCHES:
        try:
            text = _Writer(stretch).items(parsed)
        except (_Unsupported, RecursionError):
            return None
        too_long = max_length is not None and len(text) > max_length
        if not too_long and len(text) >= min_length and compiled.search(text):
            return text
        if too_long:
            return None
    return None


class _Writer:
    def __init__(self, stretch: int) -> None:
        self.stretch = stretch
        self.groups: dict[int, str] = {}

    def items(self, items: Any) -> str:
        return "".join(self.item(str(op), arg) for op, arg in items)

    def repeat(self, sub: Any, count: int) -> str:
        parts: list[str] = []
        size = 0
        for _ in range(count):
            parts.append(self.items(sub))
            size += len(parts[-1])
            if size > MAX_SAMPLE:
                raise _Unsupported("too long")
        return "".join(parts)

    def item(self, op: str, arg: Any) -> str:
        if op == "LITERAL":
            return chr(arg)
        if op == "NOT_LITERAL":
            return next(c for c in _CANDIDATES if ord(c) != arg)
        if op == "ANY":
            return "a"
        if op == "IN":
            return _in_class(arg)
        if op == "CATEGORY":
            return _CATEGORY_CHARS.get(str(arg), "a")
        if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            return self.repeat(sub, min(low + self.stretch, high))
        if op in ("SUBPATTERN", "ATOMIC_GROUP"):
            group, sub = (arg[0], arg[-1]) if op == "SUBPATTERN" else (None, arg)
            text = self.items(sub)
            if group is not None:
                self.groups[group] = text
            return text
        if op == "BRANCH":
            return self.items(arg[1][0])
        if op == "GROUPREF":
            return self.groups.get(arg, "")
        if op in ("AT", "ASSERT", "ASSERT_NOT"):
            return ""  # anchors and lookarounds match no text of their own; the final check judges
        raise _Unsupported(op)


def _in_class(members: Any) -> str:
    negated = bool(members) and str(members[0][0]) == "NEGATE"
    if not negated:
        op, arg = str(members[0][0]), members[0][1]
        if op == "LITERAL":
            return chr(arg)
        if op == "RANGE":
            return chr(arg[0])
        if op == "CATEGORY":
            return _CATEGORY_CHARS.get(str(arg), "a")
        raise _Unsupported(op)
    return next((c for c in _CANDIDATES if not _in_members(c, members[1:])), "\u00e9")


def _in_members(char: str, members: Any) -> bool:
    for op, arg in members:
        kind = str(op)
        if kind == "LITERAL" and ord(char) == arg:
            return True
        if kind == "RANGE" and arg[0] <= ord(char) <= arg[1]:
            return True
        if kind == "CATEGORY" and (test := _CATEGORY_TESTS.get(str(arg))) and test.match(char):
            return True
    return False
