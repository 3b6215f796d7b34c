"""What the offline provider takes from a prompt to fill in values: numbers, places, names,
an arithmetic expression, clauses, dates, e-mail addresses and URLs.

Plain regular expressions over the text, no language model: the same prompt always gives the
same facts. docs/STREAMING_GUIDE.md ("Tools, reasoning and JSON") states the rules for clients.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

QUOTE_LIMIT = 200  # characters of the prompt used as a query value
DEFAULT_DATE = datetime.date(2025, 1, 15)

_DATE = re.compile(
    r"(?<!\d)(\d{4}-\d{2}-\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?"
)
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\w)")
_INNER = "'\u2019-"  # inside a word, after its first letter: "O'Neill", "Saint-Tropez"
_WORD = rf"[A-Z][\w{_INNER}]*"
_RUN = rf"{_WORD}(?:\s+{_WORD})*"
_PROPER = re.compile(rf"(?<![\w{_INNER}]){_RUN}")
_PLACE = re.compile(rf"\b(?:in|at|near|from|to)\s+({_RUN})")
_EXPRESSION = re.compile(r"[-+*/^%().\d\s]*\d[-+*/^%().\d\s]*")
_OPERATOR = re.compile(r"\d\s*[-+*/^%]\s*[-(\d.]")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"https?://[^\s\"'<>]+")
_CLAUSE_SPLIT = re.compile(r"[,;:.!?]+(?=\s|$)|\n|\s+(?:and|or)\s+")  # not inside "12.5" or a URL
_CLAUSE_TRIM = " \"'()[]{}"
_SENTENCE_END = re.compile(r"[.!?]\s+")
# A sentence's first word is capitalised anyway: one of these there names nothing.
# fmt: off
_OPENERS = frozenset({
    "a", "an", "the", "i", "what", "whats", "where", "when", "who", "which", "why", "how", "is", "are",
    "was", "were", "do", "does", "did", "can", "could", "would", "should", "will", "may", "please",
    "tell", "show", "give", "find", "get", "use", "call", "search", "list", "write", "make", "create",
    "compute", "calculate", "convert", "book", "send", "set", "look", "check", "explain", "describe",
    "summarize", "translate", "add", "let", "hi", "hello", "hey",
})
# fmt: on


def _is_date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _number(text: str) -> int | float:
    text = text.replace(",", "")
    return float(text) if "." in text else int(text)


class Facts:
    """The facts of one prompt, and a cursor over its numbers: each numeric value generated
    takes the next number that fits it, so the numbers fill fields in the order they appear.

    ``data`` (tool results being answered) comes before the prompt for numbers, dates, e-mail
    addresses, URLs and enum mentions; phrases come from the prompt alone."""

    def __init__(self, prompt: str, *, data: str = "", ignore: frozenset[str] = frozenset()) -> None:
        self.text = " ".join(prompt.split())
        self.searched = " ".join(f"{data} {prompt}".split())
        self.dates = [m.group(1) for m in _DATE.finditer(self.searched) if _is_date(m.group(1))]
        self.numbers = [_number(m.group()) for m in _NUMBER.finditer(_DATE.sub(" ", self.searched))]
        self.cursor = 0
        self.emails = _unique(_EMAIL.findall(self.searched))
        self.urls = _unique([url.rstrip(".,;:!?)") for url in _URL.findall(self.searched)])
        lowered = {word.lower() for word in ignore}
        self.propers = _unique(_proper_runs(self.text, lowered))
        self.places = _unique([*_place_runs(self.text, lowered), *self.propers])
        self.expressions = _expressions(_DATE.sub(" ", self.text))
        self.clauses = _unique(
            [c.strip(_CLAUSE_TRIM) for c in _CLAUSE_SPLIT.split(self.text) if c.strip(_CLAUSE_TRIM)]
        )

    @property
    def query(self) -> str:
        return self.text[:QUOTE_LIMIT]

    def take_number(self, fits: Callable[[int | float], bool]) -> int | float | None:
        """The next number at or after the cursor that ``fits``, moving the cursor past it."""
        for i in range(self.cursor, len(self.numbers)):
            if fits(self.numbers[i]):
                self.cursor = i + 1
                return self.numbers[i]
        return None


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _sentence_starts(text: str) -> set[int]:
    return {0} | {m.end() for m in _SENTENCE_END.finditer(text)}


def _trim_run(run: str, start: int, starts: set[int], ignore: set[str]) -> str:
    """``run`` without tool names, and without its first word where that opens a sentence and is
    a common word or alone (a capital there says nothing)."""
    words = run.split()
    if start in starts and (len(words) == 1 or re.sub(r"\W", "", words[0].lower()) in _OPENERS):
        words = words[1:]
    words = [w for w in words if w.lower() not in ignore]
    return " ".join(words)


def _proper_runs(text: str, ignore: set[str]) -> list[str]:
    starts = _sentence_starts(text)
    runs = (_trim_run(m.group(), m.start(), starts, ignore) for m in _PROPER.finditer(text))
    return [run.rstrip(_INNER) for run in runs if run]


def _place_runs(text: str, ignore: set[str]) -> list[str]:
    runs = (_trim_run(m.group(1), m.start(1), set(), ignore) for m in _PLACE.finditer(text))
    return [run.rstrip(_INNER) for run in runs if run]


def _expressions(text: str) -> list[str]:
    """Arithmetic in the prompt (digits with an operator), the longest first."""
    found = [m.group().strip() for m in _EXPRESSION.finditer(text)]
    found = [e.strip(" .") for e in found if _OPERATOR.search(e)]
    return sorted(_unique(found), key=len, reverse=True)
