"""Anthropic Messages streaming bytes, as its API sends them: for parser transcripts and fake upstreams."""

from __future__ import annotations

import json


def sse_event(name: str, data: str) -> bytes:
    return f"event: {name}\ndata: {data}\n\n".encode()


def frame_chunks(recording: bytes) -> bytes:
    """A ``.chunks.txt`` recording (one event payload per line) framed as the API sends it."""
    lines = [line for line in recording.splitlines() if line.strip()]
    return b"".join(sse_event(json.loads(line)["type"], line.decode()) for line in lines)


def message_start(input_tokens: int = 21, cache_write: int = 0, cache_read: int = 0) -> bytes:
    return sse_event(
        "message_start",
        '{"type":"message_start","message":{"id":"msg_01Hx","type":"message","role":"assistant",'
        '"model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,'
        f'"usage":{{"input_tokens":{input_tokens},"cache_creation_input_tokens":{cache_write},'
        f'"cache_read_input_tokens":{cache_read},"output_tokens":1,"service_tier":"standard"}}}}}}',
    )


def block_start(index: int = 0, block: str = '{"type":"text","text":""}') -> bytes:
    return sse_event(
        "content_block_start", f'{{"type":"content_block_start","index":{index},"content_block":{block}}}'
    )


def tool_use_start(index: int, call_id: str, name: str) -> bytes:
    block = {"type": "tool_use", "id": call_id, "name": name, "input": {}, "caller": {"type": "direct"}}
    return block_start(index, json.dumps(block, separators=(",", ":")))


def thinking_start(index: int = 0) -> bytes:
    return block_start(index, '{"type":"thinking","thinking":"","signature":""}')


def _delta(index: int, delta: dict[str, str]) -> bytes:
    body = json.dumps(delta, ensure_ascii=False)
    return sse_event(
        "content_block_delta", f'{{"type":"content_block_delta","index":{index},"delta":{body}}}'
    )


def text(value: str, index: int = 0) -> bytes:
    return _delta(index, {"type": "text_delta", "text": value})


def input_json(index: int, fragment: str) -> bytes:
    return _delta(index, {"type": "input_json_delta", "partial_json": fragment})


def thinking(value: str, index: int = 0) -> bytes:
    return _delta(index, {"type": "thinking_delta", "thinking": value})


def signature(value: str, index: int = 0) -> bytes:
    return _delta(index, {"type": "signature_delta", "signature": value})


def block_stop(index: int = 0) -> bytes:
    return sse_event("content_block_stop", f'{{"type":"content_block_stop","index":{index}}}')


def message_delta(
    stop_reason: str = "end_turn", usage: str = '{"output_tokens":7}', extra: str = ""
) -> bytes:
    return sse_event(
        "message_delta",
        f'{{"type":"message_delta","delta":{{"stop_reason":"{stop_reason}","stop_sequence":null{extra}}},'
        f'"usage":{usage}}}',
    )


PING = sse_event("ping", '{"type": "ping"}')
MESSAGE_STOP = sse_event("message_stop", '{"type":"message_stop"}')
