"""Where streams are kept for resume: in memory (one instance) or in Redis (many)."""

from __future__ import annotations

from server.config import Config
from server.stores.base import ResumeStore
from server.stores.memory import MemoryStore


def make_store(config: Config) -> ResumeStore:
    if config.resume.store == "redis":
        from server.stores.redis import RedisStore  # the redis package is needed only then

        return RedisStore(config)
    return MemoryStore(config)
