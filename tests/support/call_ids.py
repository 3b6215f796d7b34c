"""Numbered call ids for the parsers of providers that give calls none (Gemini, older Ollama).

Such a parser makes ids at random, so two runs over one stream differ; numbered instead (call_0,
call_1, ... from each new parser on), every split of a stream gives the same events."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

import pytest

T = TypeVar("T")


class NumberedIds:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> None:
        """Number the ids that ``module`` makes with its ``new_call_id``."""
        self._counter = itertools.count()
        monkeypatch.setattr(module, "new_call_id", self._next)

    def _next(self) -> str:
        return f"call_{next(self._counter)}"

    def fresh(self, make: Callable[[], T]) -> Callable[[], T]:
        """``make``, counting from call_0 again for each parser it makes."""

        def made() -> T:
            self._counter = itertools.count()
            return make()

        return made
