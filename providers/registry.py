"""The providers a gateway serves, by name."""

from __future__ import annotations

from collections.abc import Iterable

from protocol.messages import ProviderInfo
from providers.base import Provider


class ProviderRegistry:
    def __init__(self, providers: Iterable[Provider]) -> None:
        self._providers = {p.name: p for p in providers}

    def get(self, name: str) -> Provider | None:
        return self._providers.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._providers)

    def infos(self) -> list[ProviderInfo]:
        return [
            ProviderInfo(
                name=p.name, streaming=p.streaming, configured=p.configured, default_model=p.default_model
            )
            for p in self._providers.values()
        ]
