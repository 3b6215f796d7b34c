"""The request bytes: straight to the upstream, and to the gateway over SSE or WebSocket."""

from __future__ import annotations

import json

from bench.clients.record import Dialect
from bench.scenario import Scenario

PROMPT = "Benchmark prompt."


def direct_request(dialect: Dialect, scenario: Scenario, host: str) -> bytes:
    """The request the gateway itself sends upstream (same body and headers, give or take)."""
    messages = [{"role": "user", "content": PROMPT}]
    if dialect == "openai":
        path = "/v1/chat/completions"
        payload: dict[str, object] = {
            "messages": messages,
            "model": scenario.model,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        auth = "authorization: Bearer sk-bench\r\n"
    else:
        path = "/v1/messages"
        payload = {"model": scenario.model, "max_tokens": 4096, "messages": messages, "stream": True}
        auth = "x-api-key: sk-bench\r\nanthropic-version: 2023-06-01\r\n"
    return http_post(path, host, json.dumps(payload).encode(), auth)


def gateway_body(sid: str, dialect: Dialect, scenario: Scenario, *, ws: bool) -> bytes:
    body: dict[str, object] = {"id": sid, "provider": dialect, "model": scenario.model, "prompt": PROMPT}
    if ws:
        body = {"type": "start", **body}
    return json.dumps(body, separators=(",", ":")).encode()


def sse_request(sid: str, dialect: Dialect, scenario: Scenario, host: str) -> bytes:
    return http_post("/v1/streams", host, gateway_body(sid, dialect, scenario, ws=False))


def http_post(path: str, host: str, body: bytes, extra_headers: str = "") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"accept: text/event-stream\r\n{extra_headers}content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body
