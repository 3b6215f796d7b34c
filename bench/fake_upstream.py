"""A fake LLM upstream speaking OpenAI's and Anthropic's streaming wire formats, in its own process.

``python -m bench.fake_upstream --port P`` (0 picks a free port; the first line on stdout is
``listening on <port>``).

- ``POST /v1/chat/completions``: OpenAI Chat Completions SSE, byte for byte as the API sends it
  (role chunk, content chunks, finish chunk, usage chunk, ``data: [DONE]``). A tool-call scenario
  (``-t1``) streams ``delta.tool_calls`` as gpt-4o-mini does (index, id and name with the role,
  then argument fragments, ``finish_reason: "tool_calls"``); a reasoning one (``-r1``) streams
  ``delta.reasoning_content`` as DeepSeek does.
- ``POST /v1/messages``: Anthropic Messages named events (``message_start`` … ``message_stop``);
  a tool call as a ``tool_use`` block of ``input_json_delta``s, reasoning as a ``thinking`` block
  of ``thinking_delta``s closed by its ``signature_delta``.
- ``GET /stats``: requests served, content chunks written, responses cut by the client.
- ``GET /sends``: for streams whose model has a key (``-k42``), ``time.perf_counter()`` when the
  request was read and when each content chunk was written, by key; the record is then cleared.
  ``perf_counter`` is CLOCK_MONOTONIC on Linux, the same clock in every process, so a client can
  take its read times against these write times.

The request's ``model`` is the scenario (see ``bench.scenario``). A real provider's CPU is not on
the gateway's machine, so this upstream is as cheap as it can be: a minimal HTTP/1.1 server on a
bare ``asyncio.Protocol`` (keep-alive, chunked responses), every byte of a response encoded once
per scenario, and one ``transport.write`` per content chunk from a ``loop.call_at`` timer
scheduled against the request's arrival time (not cumulative sleeps, so pacing does not drift).
With pacing 0 the whole response is written at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

from bench.scenario import TOOL_NAME, Scenario, escaped, fragments

MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
PROMPT_TOKENS = 9


def _oai_prefix(model: str) -> str:
    return (
        '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1767225600,"model":'
        + json.dumps(model)
        + ',"service_tier":"default","system_fingerprint":"fp_bench",'
    )


def _deepseek_prefix(model: str) -> str:
    return (
        '{"id":"33be18fc-3842-486c-8c29-dd8e578f7f20","object":"chat.completion.chunk",'
        '"created":1767225600,"model":' + json.dumps(model) + ',"system_fingerprint":"fp_bench_prod",'
    )


def _chunked(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _head(content_type: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type + b"\r\ncache-control: no-cache\r\n"
        b"x-request-id: req_bench\r\ntransfer-encoding: chunked\r\n\r\n"
    )


SSE_HEAD = _head(b"text/event-stream; charset=utf-8")
OPENAI_CALL_ID = "call_ZR5UUuTt3pf61kjwAJIYdVMj"
ANTHROPIC_CALL_ID = "toolu_01KFbKqPYSuAKujiL6mTfzYA"
SIGNATURE = "EvMCCkYICxgCKkCHP2cSuEdcJK/0rFwqES/ecn+VurRpNTwI4XNyM0vnNfGsc9OmE8YYHauwBZ/uaRpmlEn2I4=="


@dataclass(frozen=True, slots=True)
class Encoded:
    """A whole response, encoded once: what goes out at once, per content chunk, and at the end."""

    head: bytes
    chunks: list[bytes]
    tail: bytes


def _sse(prefix: str) -> Callable[[str], bytes]:
    """One ``data:`` event of the envelope ``prefix``, as one HTTP chunk."""
    return lambda rest: _chunked(b"data: " + (prefix + rest).encode() + b"\n\n")


def _each(event: Callable[[str], bytes], before: str, texts: Iterable[str], after: str) -> list[bytes]:
    """One event per text, each between the same JSON."""
    return [event(before + text + after) for text in texts]


def _texts(scenario: Scenario) -> Iterator[str]:
    return (scenario.text(i) for i in range(scenario.chunks))


def _oai_usage(n: int) -> str:
    counts = f'"prompt_tokens":{PROMPT_TOKENS},"completion_tokens":{n},"total_tokens":{PROMPT_TOKENS + n}'
    return (
        '"choices":[],"usage":{'
        + counts
        + ',"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":'
        '{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,'
        '"rejected_prediction_tokens":0}},"obfuscation":"u"}'
    )


_DONE = _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"


@lru_cache(maxsize=256)
def openai_response(model: str, scenario: Scenario) -> Encoded:
    if scenario.kind == "tool":
        return _openai_tool_call(model, scenario)
    if scenario.kind == "reasoning":
        return _deepseek_reasoning(model, scenario)
    event = _sse(_oai_prefix(model))
    role = event(
        '"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
        '"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"Kq"}'
    )
    chunks = _each(
        event,
        '"choices":[{"index":0,"delta":{"content":"',
        _texts(scenario),
        '"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"p4Rz"}',
    )
    finish = event(
        '"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],'
        '"usage":null,"obfuscation":"J2"}'
    )
    return Encoded(SSE_HEAD + role, chunks, finish + event(_oai_usage(scenario.chunks)) + _DONE)


def _openai_tool_call(model: str, scenario: Scenario) -> Encoded:
    """As gpt-4o-mini streams a call (the recording openai-gpt4omini-toolcall-only.sse): the role
    chunk carries the call's index, id and name with empty arguments, then argument fragments."""
    event = _sse(_oai_prefix(model))
    start = event(
        '"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"'
        + OPENAI_CALL_ID
        + '","type":"function","function":{"name":"'
        + TOOL_NAME
        + '","arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,'
        '"obfuscation":"C63r"}'
    )
    chunks = _each(
        event,
        '"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"',
        map(escaped, fragments(scenario)),
        '"}}]},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"qfQVOwfh"}',
    )
    finish = event(
        '"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],'
        '"usage":null,"obfuscation":"VskHzNI7"}'
    )
    return Encoded(SSE_HEAD + start, chunks, finish + event(_oai_usage(scenario.chunks)) + _DONE)


def _deepseek_reasoning(model: str, scenario: Scenario) -> Encoded:
    """As deepseek-reasoner streams its thinking (deepseek-reasoner-reasoning-content.sse):
    ``delta.reasoning_content``, and the usage on the finish chunk."""
    event = _sse(_deepseek_prefix(model))
    role = event(
        '"choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""},'
        '"logprobs":null,"finish_reason":null}],"usage":null}'
    )
    chunks = _each(
        event,
        '"choices":[{"index":0,"delta":{"content":null,"reasoning_content":"',
        _texts(scenario),
        '"},"logprobs":null,"finish_reason":null}],"usage":null}',
    )
    n = scenario.chunks
    finish = event(
        '"choices":[{"index":0,"delta":{"content":"","reasoning_content":null},"logprobs":null,'
        f'"finish_reason":"stop"}}],"usage":{{"prompt_tokens":{PROMPT_TOKENS},"completion_tokens":{n},'
        f'"total_tokens":{PROMPT_TOKENS + n},"prompt_tokens_details":{{"cached_tokens":0}},'
        f'"completion_tokens_details":{{"reasoning_tokens":{n}}},"prompt_cache_hit_tokens":0,'
        f'"prompt_cache_miss_tokens":{PROMPT_TOKENS}}}}}'
    )
    return Encoded(SSE_HEAD + role, chunks, finish + _DONE)


def _named(name: str, data: str) -> bytes:
    """One Anthropic named event, as one HTTP chunk."""
    return _chunked(f"event: {name}\ndata: {data}\n\n".encode())


def _block_start(block: str) -> bytes:
    return _named(
        "content_block_start", '{"type":"content_block_start","index":0,"content_block":' + block + "}"
    )


def _block_delta(delta: str) -> bytes:
    return _named("content_block_delta", '{"type":"content_block_delta","index":0,"delta":' + delta + "}")


@lru_cache(maxsize=256)
def anthropic_response(model: str, scenario: Scenario) -> Encoded:
    start = _named(
        "message_start",
        '{"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant",'
        '"model":'
        + json.dumps(model)
        + ',"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":'
        + str(PROMPT_TOKENS)
        + ',"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,'
        '"service_tier":"standard"}}}',
    )
    ping = _named("ping", '{"type": "ping"}')
    stop_reason = "end_turn"
    block_end = b""
    if scenario.kind == "tool":  # as claude-haiku-4-5 streams a call (anthropic-haiku45-tool-use-only)
        head = _block_start(
            f'{{"type":"tool_use","id":"{ANTHROPIC_CALL_ID}","name":"{TOOL_NAME}","input":{{}}}}'
        ) + _block_delta('{"type":"input_json_delta","partial_json":""}')
        chunks = _each(
            _block_delta,
            '{"type":"input_json_delta","partial_json":"',
            map(escaped, fragments(scenario)),
            '"}',
        )
        stop_reason = "tool_use"
    elif scenario.kind == "reasoning":  # as claude-sonnet-4 thinks (anthropic-sonnet4-thinking.sse)
        head = _block_start('{"type":"thinking","thinking":"","signature":""}')
        chunks = _each(_block_delta, '{"type":"thinking_delta","thinking":"', _texts(scenario), '"}')
        block_end = _block_delta('{"type":"signature_delta","signature":"' + SIGNATURE + '"}')
    else:
        head = _block_start('{"type":"text","text":""}')
        chunks = _each(_block_delta, '{"type":"text_delta","text":"', _texts(scenario), '"}')
    tail = (
        block_end
        + _named("content_block_stop", '{"type":"content_block_stop","index":0}')
        + _named(
            "message_delta",
            '{"type":"message_delta","delta":{"stop_reason":"'
            + stop_reason
            + '","stop_sequence":null},"usage":{"output_tokens":'
            + str(scenario.chunks)
            + "}}",
        )
        + _named("message_stop", '{"type":"message_stop"}')
        + b"0\r\n\r\n"
    )
    return Encoded(SSE_HEAD + start + head + ping, chunks, tail)


ROUTES: dict[tuple[bytes, bytes], Callable[[str, Scenario], Encoded]] = {
    (b"POST", b"/v1/chat/completions"): openai_response,
    (b"POST", b"/v1/messages"): anthropic_response,
}


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.streams = 0
        self.chunks = 0  # content chunks written
        self.cut = 0  # responses the client closed before their end
        self.open_connections = 0
        self.sends: dict[int, list[float]] = {}  # key -> [request read, chunk 0 written, ...]

    def json(self) -> bytes:
        return json.dumps(
            {
                "requests": self.requests,
                "streams": self.streams,
                "chunks": self.chunks,
                "cut": self.cut,
                "open_connections": self.open_connections,
            }
        ).encode()


class UpstreamProtocol(asyncio.Protocol):
    """One client connection: HTTP/1.1 requests one after the other (keep-alive)."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.responding = False
        self.close_after = False
        self.timer: asyncio.TimerHandle | None = None
        # the paced response being written
        self.encoded: Encoded | None = None
        self.index = 0
        self.t0 = 0.0
        self.first = 0.0
        self.pacing = 0.0
        self.sends: list[float] | None = None
        self.t_read = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self.stats.open_connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.open_connections -= 1
        if self.responding:
            self.stats.cut += 1
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.encoded = None
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.t_read = time.perf_counter()
        self.buffer += data
        if not self.responding:
            self._next_request()

    def _next_request(self) -> None:
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD:
                self._simple(431, b'{"error":{"message":"head too large"}}', close=True)
            return
        lines = bytes(buffer[:end]).split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            self._simple(400, b'{"error":{"message":"bad request line"}}', close=True)
            return
        method, target, _ = parts
        length = 0
        self.close_after = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding":
                self._simple(411, b'{"error":{"message":"send a content-length"}}', close=True)
                return
            elif name == b"connection" and value.strip().lower() == b"close":
                self.close_after = True
        if length > MAX_BODY:
            self._simple(413, b'{"error":{"message":"body too large"}}', close=True)
            return
        if len(buffer) < end + 4 + length:
            return
        body = bytes(buffer[end + 4 : end + 4 + length])
        del buffer[: end + 4 + length]
        self.stats.requests += 1
        self._serve(method, target.partition(b"?")[0], body)

    def _serve(self, method: bytes, path: bytes, body: bytes) -> None:
        if method == b"GET" and path == b"/stats":
            self._simple(200, self.stats.json())
            return
        if method == b"GET" and path == b"/sends":
            sends, self.stats.sends = self.stats.sends, {}
            self._simple(200, json.dumps(sends).encode())
            return
        if method == b"GET" and path == b"/healthz":
            self._simple(200, b'{"status":"ok"}')
            return
        route = ROUTES.get((method, path))
        if route is None:
            self._simple(404, b'{"error":{"message":"no such route","type":"invalid_request_error"}}')
            return
        try:
            scenario = Scenario.parse(json.loads(body)["model"])
            encoded = route(scenario.base_model, scenario.keyed(0))
        except (ValueError, KeyError, TypeError) as exc:
            message = json.dumps({"error": {"message": str(exc), "type": "invalid_request_error"}})
            self._simple(400, message.encode())
            return
        self.stats.streams += 1
        self._stream(encoded, scenario)

    def _simple(self, status: int, body: bytes, *, close: bool = False) -> None:
        assert self.transport is not None
        reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}.get(status, b"Error")
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (status, reason, len(body), body)
        )
        if close or self.close_after:
            self.transport.close()
        elif self.buffer:
            self._next_request()

    def _stream(self, encoded: Encoded, scenario: Scenario) -> None:
        assert self.transport is not None
        self.sends = None
        if scenario.key:
            self.sends = self.stats.sends[scenario.key] = [self.t_read]
        if scenario.pacing_ms == 0 and scenario.first_ms == 0:
            if self.sends is not None:
                self.sends.extend([time.perf_counter()] * len(encoded.chunks))
            self.transport.write(b"".join([encoded.head, *encoded.chunks, encoded.tail]))
            self.stats.chunks += len(encoded.chunks)
            self._finished()
            return
        self.responding = True
        self.encoded = encoded
        self.index = 0
        self.t0 = self.loop.time()
        self.first = scenario.first_ms / 1000
        self.pacing = scenario.pacing_ms / 1000
        if self.first > 0:
            self.transport.write(encoded.head)
            self.timer = self.loop.call_at(self.t0 + self.first, self._send)
        else:  # the first content chunk goes out with the head
            if self.sends is not None:
                self.sends.append(time.perf_counter())
            self.transport.write(encoded.head + encoded.chunks[0])
            self.stats.chunks += 1
            self.index = 1
            self._schedule()

    def _schedule(self) -> None:
        assert self.encoded is not None
        if self.index >= len(self.encoded.chunks):
            assert self.transport is not None
            self.transport.write(self.encoded.tail)
            self.responding = False
            self.encoded = None
            self.timer = None
            self._finished()
            return
        self.timer = self.loop.call_at(self.t0 + self.first + self.index * self.pacing, self._send)

    def _send(self) -> None:
        if self.transport is None or self.encoded is None:
            return
        if self.sends is not None:
            self.sends.append(time.perf_counter())
        self.transport.write(self.encoded.chunks[self.index])
        self.stats.chunks += 1
        self.index += 1
        self._schedule()

    def _finished(self) -> None:
        if self.transport is None:
            return
        if self.close_after:
            self.transport.close()
        elif self.buffer:
            self._next_request()


async def serve(host: str, port: int, ready: Callable[[int], None] | None = None) -> None:
    loop = asyncio.get_running_loop()
    stats = Stats()
    server = await loop.create_server(lambda: UpstreamProtocol(stats), host, port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    if ready is not None:
        ready(bound)
    async with server:
        await server.serve_forever()


def _install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fake_upstream", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    loop_name = _install_uvloop()

    def ready(port: int) -> None:
        print(f"listening on {port} ({loop_name})", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())
