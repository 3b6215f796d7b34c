"""Inputs that once broke the decoders (msgspec raising RecursionError or UnicodeError)."""

from __future__ import annotations


def deep(depth: int) -> str:
    """``depth`` nested JSON arrays."""
    return "[" * depth + "]" * depth
