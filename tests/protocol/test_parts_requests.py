"""Protocol v1.1 start fields: tools, tool_choice, response_format, reasoning, message parts."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from protocol import structured
from protocol.codec import BadMessage, decode_client_message
from protocol.messages import (
    MAX_IMAGE_BYTES,
    MAX_SCHEMA_BYTES,
    ImagePart,
    JsonSchemaFormat,
    StartRequest,
    TextPart,
    ToolChoiceName,
)
from protocol.structured import parse_object, schema_problem

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def start(**fields: Any) -> StartRequest | BadMessage:
    message = {"type": "start", "id": "s1", "messages": [{"role": "user", "content": "hi"}], **fields}
    decoded = decode_client_message(json.dumps(message))
    assert isinstance(decoded, StartRequest | BadMessage)
    return decoded


def refused(**fields: Any) -> str:
    decoded = start(**fields)
    assert isinstance(decoded, BadMessage), decoded
    assert decoded.id == "s1"
    return decoded.message


def test_a_start_with_every_new_field_decodes() -> None:
    decoded = start(
        tools=[{"name": "get_weather", "description": "Weather now", "parameters": WEATHER}],
        tool_choice={"name": "get_weather"},
        response_format={"type": "json_schema", "name": "answer", "schema": WEATHER, "strict": True},
        reasoning={"effort": "low", "budget_tokens": 1024},
    )
    assert isinstance(decoded, StartRequest)
    assert decoded.tools is not None
    assert decoded.tools[0].parameters == WEATHER
    assert decoded.tool_choice == ToolChoiceName("get_weather")
    assert isinstance(decoded.response_format, JsonSchemaFormat)
    assert decoded.response_format.strict
    assert decoded.reasoning is not None
    assert decoded.reasoning.effort == "low"


def test_a_v1_start_has_none_of_them() -> None:
    decoded = start()
    assert isinstance(decoded, StartRequest)
    assert (decoded.tools, decoded.tool_choice, decoded.response_format, decoded.reasoning) == (None,) * 4


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"tools": [{"name": "a b"}]}, "$.tools[0].name"),
        ({"tools": [{"name": "x"}, {"name": "x"}]}, "tool names must be unique: `x` - at `$.tools[1].name`"),
        ({"tools": [{"name": "x", "parameters": {"type": 5}}]}, "not a valid JSON Schema"),
        ({"tools": [{"name": "x", "oops": 1}]}, "unknown field `oops`"),
        ({"tools": [{"name": f"t{i}"} for i in range(129)]}, "$.tools"),
        ({"tool_choice": "required"}, "`tool_choice` needs `tools`"),
        ({"tools": [{"name": "x"}], "tool_choice": {"name": "y"}}, "names no tool in `tools`: `y`"),
        ({"tools": [{"name": "x"}], "tool_choice": "sometimes"}, "$.tool_choice"),
        ({"response_format": {"type": "xml"}}, "$.response_format"),
        ({"response_format": {"type": "json_schema"}}, "missing required field `schema`"),
        ({"reasoning": {"effort": "max"}}, "$.reasoning.effort"),
        ({"reasoning": {"budget_tokens": 0}}, "$.reasoning.budget_tokens"),
    ],
)
def test_bad_new_fields_are_refused_naming_the_place(fields: dict[str, Any], says: str) -> None:
    assert says in refused(**fields)


def test_tool_choice_none_needs_no_tools() -> None:
    assert isinstance(start(tool_choice="none"), StartRequest)


def test_schemas_are_bounded() -> None:
    big = {"type": "object", "description": "x" * MAX_SCHEMA_BYTES}
    assert f"the limit is {MAX_SCHEMA_BYTES}" in refused(tools=[{"name": "x", "parameters": big}])
    fmt = {"type": "json_schema", "name": "r", "schema": big}
    assert "at `$.response_format.schema`" in refused(response_format=fmt)


def user(content: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": content}]


def test_image_parts_decode() -> None:
    url = "https://example.com/cat.png"
    decoded = start(messages=user([{"type": "text", "text": "what is it?"}, {"type": "image", "url": url}]))
    assert isinstance(decoded, StartRequest)
    assert decoded.messages is not None
    message = decoded.messages[0]
    assert message.content == [TextPart("what is it?"), ImagePart(url)]
    assert message.text == "what is it?"
    assert message.images == [ImagePart(url)]
    assert isinstance(start(messages=user([{"type": "image", "url": PNG}])), StartRequest)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://example.com/cat.png", "an image is an https: URL or a data: URL"),
        ("file:///etc/passwd", "an image is an https: URL or a data: URL"),
        ("data:text/plain;base64,aGk=", "an image is an https: URL or a data: URL"),
        ("data:image/png;base64,***", "invalid base64"),
        ("https://example.com/" + "a" * 5000, "limited to 4096 characters"),
        (
            "data:image/png;base64," + base64.b64encode(b"\0" * (MAX_IMAGE_BYTES + 3)).decode(),
            f"limited to {MAX_IMAGE_BYTES} bytes",
        ),
    ],
)
def test_bad_images_are_refused(url: str, says: str) -> None:
    message = refused(messages=user([{"type": "image", "url": url}]))
    assert says in message
    assert "$.messages[0].content[0].url" in message


def test_images_are_counted_and_only_in_user_turns() -> None:
    many = [{"type": "image", "url": PNG}] * 17
    assert "at most 16 images" in refused(messages=user(many))
    turns = [*user("hi"), {"role": "assistant", "content": [{"type": "image", "url": PNG}]}]
    assert "images go in `user` messages" in refused(messages=turns)


def test_a_tool_loop_conversation_decodes() -> None:
    call = {"call_id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    turns = [
        *user("weather in Paris?"),
        {"role": "assistant", "content": None, "tool_calls": [call], "provider_state": "opaque"},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
    ]
    decoded = start(messages=turns, tools=[{"name": "get_weather", "parameters": WEATHER}])
    assert isinstance(decoded, StartRequest)
    assert decoded.messages is not None
    assert decoded.messages[1].tool_calls is not None
    assert decoded.messages[1].tool_calls[0].arguments == {"city": "Paris"}
    assert decoded.messages[2].text == '{"temp": 21}'


@pytest.mark.parametrize(
    ("turn", "says"),
    [
        ({"role": "tool", "content": "21"}, "`tool_call_id` goes with, and only with, role `tool`"),
        ({"role": "user", "content": "x", "tool_call_id": "c"}, "`tool_call_id` goes with"),
        ({"role": "tool", "tool_call_id": "c"}, "a `tool` message needs `content`"),
        ({"role": "assistant"}, "a `assistant` message needs `content`"),
        ({"role": "user", "content": "x", "provider_state": "s"}, "go on `assistant` messages"),
    ],
)
def test_bad_turns_are_refused(turn: dict[str, Any], says: str) -> None:
    assert says in refused(messages=[*user("hi"), turn])


def test_parse_object_never_calls_invalid_json_valid() -> None:
    assert parse_object('{"city": "Paris"}', WEATHER) == ({"city": "Paris"}, None)
    assert parse_object("[1, 2]", None) == ([1, 2], None)
    value, error = parse_object('{"city": "Par', WEATHER)
    assert value is None
    assert error is not None
    assert error.startswith("the output is not valid JSON")
    value, error = parse_object('{"town": "Paris"}', WEATHER)
    assert value is None
    assert error == "the output does not match the schema at $: 'city' is a required property"
    value, error = parse_object('{"city": 3}', WEATHER)
    assert error == "the output does not match the schema at $.city: 3 is not of type 'string'"


def test_a_remote_ref_is_never_fetched() -> None:
    schema = {"$ref": "https://169.254.169.254/latest/meta-data"}
    value, error = parse_object("{}", schema)
    assert value is None
    assert error is not None
    assert "could not be applied" in error


def test_schema_verdicts_are_kept_for_recent_schemas_only() -> None:
    bad = {"type": 5}
    first = schema_problem(bad)
    assert first is not None
    assert first.startswith("not a valid JSON Schema")
    assert schema_problem(bad) == first  # the kept verdict
    for i in range(structured.MAX_VERDICTS + 10):
        assert schema_problem({"type": "object", "title": f"t{i}"}) is None
    assert len(structured._verdicts) == structured.MAX_VERDICTS
    assert schema_problem(bad) == first  # evicted, and checked again the same
