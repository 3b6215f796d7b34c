"""OpenAI's streaming chat completion bytes, as its API sends them, for fake upstreams."""

from __future__ import annotations

import json


def openai_chunk(content: str | None, finish: str | None = None, chunk_id: str = "chatcmpl-7Qx") -> bytes:
    """One ``data:`` event of a ``chat.completion.chunk``; ``content`` None sends an empty delta."""
    delta = {} if content is None else {"content": content}
    body = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }
    return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"
