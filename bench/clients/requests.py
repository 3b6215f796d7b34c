"""The request bytes: straight to the upstream, and to the gateway over SSE or WebSocket."""

from __future__ import annotations

import json

from bench.clients.record import Dialect
from bench.scenario import TOOL_NAME, Scenario

PROMPT = "Benchmark prompt."

# A tool-call stream offers the one tool the upstream calls; a reasoning stream asks for reasoning,
# so the gateway forwards the parts (protocol v1.1). What each provider's request then carries:
PARAMETERS = {"type": "object", "properties": {"d": {"type": "string"}}, "required": ["d"]}
GATEWAY_PARTS: dict[str, dict[str, object]] = {
    "tool": {"tools": [{"name": TOOL_NAME, "parameters": PARAMETERS}]},
    "reasoning": {"reasoning": {"effort": "low"}},
}
OPENAI_PARTS: dict[str, dict[str, object]] = {
    "tool": {"tools": [{"type": "function", "function": {"name": TOOL_NAME, "parameters": PARAMETERS}}]},
    "reasoning": {"reasoning_effort": "low"},
}
ANTHROPIC_PARTS: dict[str, dict[str, object]] = {
    "tool": {"tools": [{"name": TOOL_NAME, "input_schema": PARAMETERS}]},
    "reasoning": {"max_tokens": 5120, "thinking": {"type": "enabled", "budget_tokens": 1024}},
}


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
    if scenario.kind != "text":
        payload.update((OPENAI_PARTS if dialect == "openai" else ANTHROPIC_PARTS)[scenario.kind])
    return http_post(path, host, json.dumps(payload).encode(), auth)


def gateway_body(sid: str, dialect: Dialect, scenario: Scenario, *, ws: bool) -> bytes:
    body: dict[str, object] = {"id": sid, "provider": dialect, "model": scenario.model, "prompt": PROMPT}
    if ws:
        body = {"type": "start", **body}
    if scenario.kind != "text":
        body.update(GATEWAY_PARTS[scenario.kind])
    return json.dumps(body, separators=(",", ":")).encode()


def sse_request(sid: str, dialect: Dialect, scenario: Scenario, host: str) -> bytes:
    return http_post("/v1/streams", host, gateway_body(sid, dialect, scenario, ws=False))


def ui_chat_request(sid: str, scenario: Scenario, host: str, path: str) -> bytes:
    """What ``DefaultChatTransport`` posts for a new chat, with the model as an extra body field
    (and the provider, which the AI SDK's route ignores)."""
    message = {"id": f"u-{sid}", "role": "user", "parts": [{"type": "text", "text": PROMPT}]}
    body = {
        "id": sid,
        "messages": [message],
        "trigger": "submit-message",
        "provider": "openai",
        "model": scenario.model,
    }
    return http_post(path, host, json.dumps(body, separators=(",", ":")).encode())


def read_mode(source: Dialect | str, scenario: Scenario) -> str:
    """How ``HttpConnection`` reads a stream of ``scenario`` from ``source`` (a dialect read
    directly, or ``gateway``)."""
    if scenario.kind == "text":
        return source
    return "gateway-parts" if source == "gateway" else f"{source}-{scenario.kind}"


def http_post(path: str, host: str, body: bytes, extra_headers: str = "") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"accept: text/event-stream\r\n{extra_headers}content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body
