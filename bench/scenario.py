"""The scenario of one stream, encoded in the request's ``model`` so it passes the gateway unchanged.

``bench-n100-s8-p20`` = 100 content chunks of 8 characters, 20 ms apart; ``-f5`` delays the first
content chunk by 5 ms (default 0); ``p0`` sends every chunk at once; ``-k42`` tags the stream so
the upstream records when it wrote each chunk (``GET /sends``). Content chunk ``i`` (0-based)
is ``i`` in decimal, zero-padded to the size, so a reader can check that nothing was lost or
reordered; through the gateway, chunk ``i`` has ``seq`` ``i + 1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_PART = re.compile(r"-([nspfk])(\d+(?:\.\d+)?)")


@dataclass(frozen=True, slots=True)
class Scenario:
    chunks: int = 100  # content chunks
    size: int = 8  # characters per content chunk
    pacing_ms: float = 20.0  # between content chunks; 0 = as fast as possible
    first_ms: float = 0.0  # before the first content chunk
    key: int = 0  # > 0: the upstream records its write times under this key

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
        return model + (f"-f{self.first_ms:g}" if self.first_ms else "")

    def keyed(self, key: int) -> Scenario:
        return Scenario(self.chunks, self.size, self.pacing_ms, self.first_ms, key)

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
        )


def full_text(scenario: Scenario) -> str:
    """Every content chunk concatenated: chunk ``i`` is ``[i * size, (i + 1) * size)``."""
    return _full_text(scenario.chunks, scenario.size)


@lru_cache(maxsize=64)
def _full_text(chunks: int, size: int) -> str:
    return "".join(str(i).zfill(size) for i in range(chunks))
