"""The scenario of one stream, encoded in the request's ``model`` so it passes the gateway unchanged.

``bench-n100-s8-p20`` = 100 content chunks of 8 characters, 20 ms apart; ``-f5`` delays the first
content chunk by 5 ms (default 0); ``p0`` sends every chunk at once; ``-k42`` tags the stream so
the upstream records when it wrote each chunk (``GET /sends``). Content chunk ``i`` (0-based)
is ``i`` in decimal, zero-padded to the size, so a reader can check that nothing was lost or
reordered; through the gateway, chunk ``i`` has ``seq`` ``i + 1``.

``-t1`` makes the chunks the argument fragments of one tool call (``bench``) instead of text: the
call starts with the response head, fragment ``i`` is chunk ``i``'s text, the first one opening
the JSON object ``{"d":"`` and the last one closing it (``"}``); through the gateway the call's
``tool_call_start`` is ``seq`` 1, fragment ``i`` is ``seq`` ``i + 2`` and ``tool_call_end``
``n + 2``. ``-r1`` makes them reasoning deltas (chunk ``i`` is reasoning ``seq`` ``i + 1``), with no
answer text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

_PART = re.compile(r"-([nspfktr])(\d+(?:\.\d+)?)")

Kind = Literal["text", "tool", "reasoning"]
TOOL_NAME = "bench"
ARGUMENTS_OPEN = '{"d":"'
ARGUMENTS_CLOSE = '"}'


@dataclass(frozen=True, slots=True)
class Scenario:
    chunks: int = 100  # content chunks
    size: int = 8  # characters per content chunk
    pacing_ms: float = 20.0  # between content chunks; 0 = as fast as possible
    first_ms: float = 0.0  # before the first content chunk
    key: int = 0  # > 0: the upstream records its write times under this key
    kind: Kind = "text"  # what the chunks are: text, one tool call's arguments, or reasoning

    def __post_init__(self) -> None:
        if self.chunks < 1 or self.size < len(str(self.chunks - 1)):
            raise ValueError(
                f"bad scenario {self}: {self.chunks} chunks need a size of at least "
                f"{len(str(self.chunks - 1))}"
            )

    @property
    def model(self) -> str:
        return self.base_model + (f"-k{self.key}" if self.key else "")

    @property
    def base_model(self) -> str:
        """The model without the key: what the upstream echoes."""
        model = f"bench-n{self.chunks}-s{self.size}-p{self.pacing_ms:g}"
        model += f"-f{self.first_ms:g}" if self.first_ms else ""
        return model + _KIND_FLAGS[self.kind]

    def keyed(self, key: int) -> Scenario:
        return Scenario(self.chunks, self.size, self.pacing_ms, self.first_ms, key, self.kind)

    @property
    def duration_s(self) -> float:
        """When the upstream sends its last content chunk, after the request."""
        return (self.first_ms + self.pacing_ms * (self.chunks - 1)) / 1000

    def text(self, index: int) -> str:
        return str(index).zfill(self.size)

    @classmethod
    def parse(cls, model: str) -> Scenario:
        if not model.startswith("bench"):
            raise ValueError(f"not a bench model: {model!r}")
        rest = model[len("bench") :]
        values: dict[str, float] = {}
        end = 0
        for match in _PART.finditer(rest):
            if match.start() != end:
                break
            values[match.group(1)] = float(match.group(2))
            end = match.end()
        if end != len(rest):
            raise ValueError(f"bad bench model: {model!r}")
        return cls(
            chunks=int(values.get("n", 100)),
            size=int(values.get("s", 8)),
            pacing_ms=values.get("p", 20.0),
            first_ms=values.get("f", 0.0),
            key=int(values.get("k", 0)),
            kind=_kind(model, values.get("t", 0), values.get("r", 0)),
        )


_KIND_FLAGS: dict[Kind, str] = {"text": "", "tool": "-t1", "reasoning": "-r1"}


def _kind(model: str, tool: float, reasoning: float) -> Kind:
    if {tool, reasoning} - {0, 1} or (tool and reasoning):
        raise ValueError(f"bad bench model: {model!r} (-t1 or -r1, not both)")
    return "tool" if tool else "reasoning" if reasoning else "text"


def full_text(scenario: Scenario) -> str:
    """Every content chunk concatenated: chunk ``i`` is ``[i * size, (i + 1) * size)``."""
    return _full_text(scenario.chunks, scenario.size)


@lru_cache(maxsize=64)
def _full_text(chunks: int, size: int) -> str:
    return "".join(str(i).zfill(size) for i in range(chunks))


def fragments(scenario: Scenario) -> tuple[str, ...]:
    """The texts of the chunks as the upstream sends them: for a tool call, the arguments' JSON
    text (``{"d":"<every chunk>"}``) cut at the chunks."""
    return _fragments(scenario.chunks, scenario.size, scenario.kind)


@lru_cache(maxsize=64)
def _fragments(chunks: int, size: int, kind: Kind) -> tuple[str, ...]:
    texts = [str(i).zfill(size) for i in range(chunks)]
    if kind == "tool":
        texts[0] = ARGUMENTS_OPEN + texts[0]
        texts[-1] += ARGUMENTS_CLOSE
    return tuple(texts)


def escaped(text: str) -> str:
    """``text`` as it stands inside a JSON string."""
    return json.dumps(text)[1:-1]
