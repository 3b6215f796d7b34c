"""Property tests of the protocol decoder (hypothesis).

Whatever a client sends, ``decode_client_message`` (a WebSocket frame, text or binary) and
``decode_http_request`` (an HTTP body) must return a message struct or a ``BadMessage`` with a
non-empty message; they never raise (the WebSocket receive loop and the HTTP routes call them
without a guard, so an exception drops the connection or answers 500). On top of "never raises":

- a decoded ``start`` is one the gateway can run (``request_problem`` finds nothing), and every id
  it reports matches the stream id pattern;
- a ``BadMessage`` carries the frame's ``id`` exactly when that id is a valid stream id;
- a text frame and the same bytes as a binary frame decode alike.

The inputs: arbitrary bytes, arbitrary text, arbitrary JSON values, JSON token soup, message-shaped
objects, and valid messages with mutated fields (wrong types, huge numbers, odd unicode, very long
ids, nesting, duplicate keys, missing fields). Runs are derandomized (the same examples every run)
and kept short. Inputs that do make the decoder raise are pinned at the end as strict xfails.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Callable
from typing import Any, get_args

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.codec import BadMessage, decode_client_message, decode_http_request, request_problem
from protocol.messages import STREAM_ID_PATTERN, Cancel, ClientMessage, Ping, StartRequest, StreamRequest
from tests.support.hostile import deep

SETTINGS = settings(
    # TOKENWIRE_PROPERTY_EXAMPLES=20000 for a longer hunt than the suite's.
    max_examples=int(os.environ.get("TOKENWIRE_PROPERTY_EXAMPLES", "300")),
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure reproduces, a pass stays a pass
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
STREAM_ID = re.compile(STREAM_ID_PATTERN)
CLIENT_TYPES: tuple[type[Any], ...] = get_args(ClientMessage)  # start, cancel, ping, ... as they come
CLIENT_TAGS = {t.__struct_config__.tag for t in CLIENT_TYPES}
ClientResult = ClientMessage | BadMessage

# ---- the checks ------------------------------------------------------------------------------


def _check_bad(result: BadMessage) -> None:
    assert isinstance(result.message, str)
    assert result.message.strip(), result
    assert result.id is None or STREAM_ID.match(result.id), result


def check_client(data: bytes | str) -> ClientResult:
    """decode_client_message never raises, and what it returns is safe to act on."""
    result = decode_client_message(data)
    assert type(result) in (*CLIENT_TYPES, BadMessage), result
    if isinstance(result, BadMessage):
        _check_bad(result)
    else:
        sid = getattr(result, "id", None)
        assert sid is None or (isinstance(sid, str) and STREAM_ID.match(sid)), result
        if isinstance(result, StartRequest):
            assert request_problem(result) is None, result
        if isinstance(result, Ping):
            assert result.ts is None or type(result.ts) in (int, float, str), result
    assert decode_client_message(data) == result, "decoding is deterministic"
    return result


def check_http(data: bytes) -> StreamRequest | BadMessage:
    """decode_http_request never raises, and a request it returns is one the gateway can run."""
    result = decode_http_request(data)
    assert type(result) in (StreamRequest, BadMessage), result
    if isinstance(result, BadMessage):
        _check_bad(result)
    else:
        assert result.id is None or STREAM_ID.match(result.id), result
        assert request_problem(result) is None, result
    return result


def check_all(data: bytes | str) -> ClientResult:
    """Both decoders; text is also sent as a binary frame (UTF-8), which must decode alike."""
    result = check_client(data)
    raw = data.encode() if isinstance(data, str) else data
    if isinstance(data, str):
        assert check_client(raw) == result, "a binary frame decodes like the same text frame"
    check_http(raw)
    return result


# ---- strategies ------------------------------------------------------------------------------

# No lone surrogates in generated text: a WebSocket text frame is valid UTF-8 by definition.
text = st.text(max_size=40)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: JSON has no integer limit
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)

HUGE_NUMBERS = [
    10**100,
    -(10**100),
    2**63,
    2**64,
    -(2**63) - 1,
    1_000_001,
    -1,
    0,
    -0.0,
    1e308,
    -1e308,
    5e-324,
    2.0000000001,
    3600.0001,
    4.999999,
]
ODD_TEXT = [
    "",
    " ",
    "\t\n",
    "\x00",
    "nul\x00in-the-middle",
    "\u202eevil-rtl",
    "\ufeffbom",
    "\uffff",
    "e\u0301",
    "🎉" * 100,
    "ünïcödé",
    "a" * 64,
    "a" * 65,
    "a" * 10_000,
    "id with spaces",
    "../../etc/passwd",
    "null",
    "true",
    "start",
    "START",
    "start ",
]
id_chars = st.sampled_from("ABCxyz0189._:-")
stream_ids = st.text(id_chars, min_size=1, max_size=64)
long_ids = st.text(id_chars, min_size=65, max_size=400)


def _nest(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"n": value}
    return value


# Well under the depth that exhausts the interpreter's recursion limit (about 990, pinned below).
nested = st.builds(_nest, json_scalars, st.integers(1, 150), st.booleans())
nasty_values = (
    json_values
    | st.sampled_from(HUGE_NUMBERS)
    | st.sampled_from(ODD_TEXT)
    | long_ids
    | nested
    | st.lists(st.sampled_from(ODD_TEXT), max_size=20)
)

names = st.text(min_size=1, max_size=128)
prompts = st.text(min_size=1, max_size=200).filter(lambda s: bool(s.strip()))
chat_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=100)}
)
chats = st.builds(
    lambda before, after: [*before, {"role": "user", "content": "hi"}, *after],
    st.lists(chat_message, max_size=3),
    st.lists(chat_message, max_size=2),
)
briefs = st.fixed_dictionaries(
    {"topic": st.text(min_size=1, max_size=500)},
    optional={
        "audience": st.text(max_size=60),
        "goal": st.text(max_size=60),
        "tone": st.text(max_size=60),
        "language": st.text(max_size=35),
    },
)
plans = st.fixed_dictionaries(
    {},
    optional={
        "target_duration_seconds": st.floats(5, 3600) | st.integers(5, 3600),
        "pacing": st.sampled_from(["slow", "conversational", "fast"]),
        "density": st.sampled_from(["sparse", "low", "balanced", "medium", "dense", "high"]),
        "style": st.text(max_size=60),
    },
)
options = st.fixed_dictionaries(
    {},
    optional={
        "temperature": st.floats(0, 2),
        "max_tokens": st.integers(1, 1_000_000),
        "top_p": st.floats(0, 1),
        "stop": st.text(max_size=256) | st.lists(st.text(max_size=20), max_size=16),
    },
)
inputs = st.one_of(
    prompts.map(lambda p: {"prompt": p}),
    chats.map(lambda m: {"messages": m}),
    briefs.map(lambda b: {"brief": b}),
    st.builds(lambda b, p: {"brief": b, "plan": p}, briefs, plans),
)
extras = st.fixed_dictionaries(
    {}, optional={"provider": names, "model": names, "agent": names, "options": options}
)
valid_starts = st.builds(
    lambda i, inp, ex: {"type": "start", "id": i, **inp, **ex}, stream_ids, inputs, extras
)
valid_cancels = stream_ids.map(lambda i: {"type": "cancel", "id": i})
valid_pings = st.fixed_dictionaries(
    {"type": st.just("ping")},
    optional={
        "ts": st.none()
        | st.integers(-(2**63), 2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | text
    },
)
# Mostly starts: they have the most fields to get wrong.
valid_messages = st.sampled_from([valid_starts] * 3 + [valid_cancels, valid_pings]).flatmap(lambda s: s)

# Where mutations land: every field the decoder knows, nested ones too, and unknown ones.
PATHS: list[tuple[str | int, ...]] = [
    ("type",),
    ("id",),
    ("provider",),
    ("model",),
    ("agent",),
    ("prompt",),
    ("messages",),
    ("messages", 0),
    ("messages", 0, "role"),
    ("messages", 0, "content"),
    ("brief",),
    ("brief", "topic"),
    ("brief", "language"),
    ("brief", "audience"),
    ("plan",),
    ("plan", "target_duration_seconds"),
    ("plan", "pacing"),
    ("plan", "density"),
    ("options",),
    ("options", "temperature"),
    ("options", "max_tokens"),
    ("options", "top_p"),
    ("options", "stop"),
    ("options", "stop", 0),
    ("options", "fault"),
    ("options", "fault", "error_after_chunks"),
    ("options", "fault", "stall_after_chunks"),
    ("options", "fault", "error_code"),
    ("ts",),
    ("unknown",),
    ("",),
]
FAULTS = [
    {"stall_after_chunks": 1, "error_after_chunks": 2},
    {"error_code": "timeout"},
    {"retry_after_s": 1},
    {"error_after_chunks": 0, "error_code": "upstream_auth", "retry_after_s": 0.5},
    {"truncate_after_chunks": 3},
    {"typo_after_chunks": 1},
    {"first_token_delay_ms": 1e12},
]


def _set(message: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    """Set ``path`` in ``message`` to ``value``, making missing containers on the way; a path
    through a value of another shape (a list where a key is due, say) sets nothing."""
    node: Any = message
    for key, child_key in itertools.pairwise(path):
        if isinstance(key, int):
            if not isinstance(node, list) or not node:
                return
            key %= len(node)
            child = node[key]
        elif isinstance(node, dict):
            child = node.get(key)
        else:
            return
        if not isinstance(child, list | dict):
            child = [{}] if isinstance(child_key, int) else {}
            node[key] = child
        node = child
    last = path[-1]
    if isinstance(last, int):
        if isinstance(node, list) and node:
            node[last % len(node)] = value
    elif isinstance(node, dict):
        node[last] = value


def _delete(message: dict[str, Any], path: tuple[str | int, ...]) -> None:
    node: Any = message
    for key in path[:-1]:
        if isinstance(node, dict) and isinstance(key, str) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and node:
            node = node[key % len(node)]
        else:
            return
    last = path[-1]
    if isinstance(node, dict) and isinstance(last, str):
        node.pop(last, None)
    elif isinstance(node, list) and isinstance(last, int) and node:
        del node[last % len(node)]


set_mutations = st.tuples(st.just("set"), st.sampled_from(PATHS), nasty_values)
fault_mutations = st.tuples(st.just("set"), st.just(("options", "fault")), st.sampled_from(FAULTS))
delete_mutations = st.tuples(st.just("delete"), st.sampled_from(PATHS), st.none())
mutation_kinds = [set_mutations] * 3 + [fault_mutations, delete_mutations]
mutations = st.lists(st.sampled_from(mutation_kinds).flatmap(lambda s: s), min_size=1, max_size=4)


def mutate(message: dict[str, Any], changes: list[tuple[str, tuple[str | int, ...], Any]]) -> dict[str, Any]:
    mutated: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(message))  # a deep copy
    for kind, path, value in changes:
        if kind == "set":
            _set(mutated, path, value)
        else:
            _delete(mutated, path)
    return mutated


def _dumps(message: Any, ascii_only: bool) -> str:
    return json.dumps(message, ensure_ascii=ascii_only)


# ---- properties ------------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    check_all(data)


@SETTINGS
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(data: str) -> None:
    check_all(data)


@SETTINGS
@given(json_values, st.booleans())
def test_arbitrary_json_values_never_raise(value: Any, ascii_only: bool) -> None:
    result = check_all(_dumps(value, ascii_only))
    if not isinstance(value, dict):
        assert type(result) is BadMessage, "only an object can be a message"


JSON_TOKENS = [
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b" ",
    b'"',
    b"\\",
    b'"type"',
    b'"start"',
    b'"cancel"',
    b'"ping"',
    b'"resume"',
    b'"key"',
    b'"after_seq"',
    b'"id"',
    b'"a"',
    b'"ts"',
    b'"prompt"',
    b'"hi"',
    b'"messages"',
    b'"role"',
    b'"user"',
    b'"brief"',
    b'"topic"',
    b'"options"',
    b'"max_tokens"',
    b"null",
    b"true",
    b"0",
    b"-0",
    b"1e999",
    b"-1e-999",
    b"18446744073709551616",
    b"0.5",
    b'"\\u0000"',
    b'"\\ud800"',
    b'"\\udc00"',
    b'"\\ud83d\\ude00"',
    b'"\\x"',
    "\u00e9".encode(),
    "🎉".encode(),
]


@SETTINGS
@given(st.lists(st.sampled_from(JSON_TOKENS), max_size=60).map(b"".join))
def test_json_token_soup_never_raises(data: bytes) -> None:
    check_all(data)


message_shaped = st.fixed_dictionaries(
    {"type": st.sampled_from(["start", "cancel", "ping", "resume"]) | json_values},
    optional={
        "key": st.text(id_chars, min_size=1, max_size=140) | json_values,
        "after_seq": st.integers() | json_values,
        "id": stream_ids | json_values,
        "prompt": prompts | json_values,
        "messages": chats | json_values,
        "brief": briefs | json_values,
        "plan": plans | json_values,
        "options": options | json_values,
        "ts": json_values,
    },
)


@SETTINGS
@given(message_shaped, st.booleans())
def test_message_shaped_objects_never_raise(message: dict[str, Any], ascii_only: bool) -> None:
    check_all(_dumps(message, ascii_only))


@SETTINGS
@given(valid_messages, st.booleans())
def test_valid_messages_decode(message: dict[str, Any], ascii_only: bool) -> None:
    """The generator of the near-valid inputs below makes valid messages before mutating them."""
    result = check_all(_dumps(message, ascii_only))
    kinds = {"start": StartRequest, "cancel": Cancel, "ping": Ping}
    assert type(result) is kinds[message["type"]], result
    if isinstance(result, StartRequest | Cancel):
        assert result.id == message["id"]
    if isinstance(result, StartRequest):
        assert check_http(_dumps(message, ascii_only).encode()) == msgspec.convert(
            {k: v for k, v in message.items() if k != "type"}, StreamRequest
        )


@SETTINGS
@given(valid_messages, mutations, st.booleans())
def test_near_valid_messages_never_raise(
    message: dict[str, Any], changes: list[tuple[str, tuple[str | int, ...], Any]], ascii_only: bool
) -> None:
    mutated = mutate(message, changes)
    result = check_all(_dumps(mutated, ascii_only))
    sid = mutated.get("id")
    if type(result) is BadMessage and isinstance(sid, str) and STREAM_ID.match(sid):
        assert result.id == sid, "a refusal names the frame's id when it is a valid stream id"
    if type(result) is not BadMessage:
        assert mutated.get("type") in CLIENT_TAGS, result


@SETTINGS
@given(valid_messages, st.sampled_from(PATHS[1:]), nasty_values)
def test_duplicate_keys_never_raise(message: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    """The same key twice in one object (JSON allows it; which one wins is the decoder's choice)."""
    key = next(k for k in path if isinstance(k, str))
    text = _dumps(message, True)
    check_all("{" + json.dumps(key) + ":" + json.dumps(value) + ("," if len(text) > 2 else "") + text[1:])


@SETTINGS
@given(valid_messages, st.integers(1, 150), st.sampled_from(PATHS))
def test_nesting_within_the_recursion_limit_never_raises(
    message: dict[str, Any], depth: int, path: tuple[str | int, ...]
) -> None:
    mutated = mutate(message, [("set", path, _nest("x", depth, as_list=depth % 2 == 0))])
    check_all(_dumps(mutated, True))


# ---- inputs that made msgspec raise something other than DecodeError ------------------------
#
# JSON nested ~1000 deep (RecursionError), invalid UTF-8 inside a string (UnicodeDecodeError) and
# a lone surrogate in a str (UnicodeEncodeError): the codec reports each as a bad message.

DEEP_FRAMES: dict[str, Callable[[int], str]] = {
    "unknown-field": lambda d: '{"type":"start","id":"a","prompt":"hi","x":' + deep(d) + "}",
    "id": lambda d: '{"type":"start","id":' + deep(d) + ',"prompt":"hi"}',
    "prompt": lambda d: '{"type":"start","id":"a","prompt":' + deep(d) + "}",
    "ping-ts": lambda d: '{"type":"ping","ts":' + deep(d) + "}",
    "truncated": lambda d: '{"id":' + "[" * d,
}


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("where", sorted(DEEP_FRAMES))
def test_deep_nesting_is_a_bad_message(where: str, depth: int) -> None:
    frame = DEEP_FRAMES[where](depth)
    assert len(frame.encode()) < 1_048_576, "fits the default max_message_bytes"
    assert type(check_client(frame)) is BadMessage
    assert type(check_http(frame.encode())) is BadMessage


INVALID_UTF8 = {
    "prompt": b'{"type":"start","id":"a","prompt":"\xff"}',
    "prompt-cesu-surrogate": b'{"type":"start","id":"a","prompt":"\xed\xa0\x80"}',
    "id": b'{"type":"start","id":"\xc3","prompt":"hi"}',
    "ping-ts": b'{"type":"ping","ts":"\xfe\xff"}',
    "brief-topic": b'{"type":"start","id":"a","brief":{"topic":"\x80"}}',
}


@pytest.mark.parametrize("where", sorted(INVALID_UTF8))
def test_invalid_utf8_in_a_string_is_a_bad_message(where: str) -> None:
    data = INVALID_UTF8[where]
    assert type(check_client(data)) is BadMessage
    assert type(check_http(data)) is BadMessage


def test_lone_surrogate_in_text_is_a_bad_message() -> None:
    assert type(check_client('{"type":"ping","ts":"\ud800"}')) is BadMessage
