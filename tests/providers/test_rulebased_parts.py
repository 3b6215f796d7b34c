"""The offline provider's typed parts (protocol v1.1): values generated for JSON Schemas (a
property test over generated schemas, and a corpus of real-world and Pydantic schemas), tool
calls, answers to tool results, reasoning, JSON output, complete(), pacing, faults, and v1
requests left exactly as they were."""

from __future__ import annotations

import datetime
import enum
import hashlib
import json
from typing import Annotated, Any, Literal

import jsonschema
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from protocol.messages import (
    Brief,
    ChatMessage,
    Fault,
    JsonFormat,
    JsonSchemaFormat,
    Options,
    Plan,
    Reasoning,
    Tool,
    ToolCall,
    ToolChoiceName,
)
from protocol.structured import parse_object
from providers.base import (
    Finish,
    GenerationRequest,
    ProviderError,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UpstreamProtocolError,
    UpstreamUnavailable,
    Usage,
)
from providers.offline import pattern_sample
from providers.offline.prompt_facts import Facts
from providers.offline.rulebased import RuleBasedProvider, draft_text, plan_turn
from providers.offline.schema_values import value_for
from providers.prompts import prompt_messages, script_messages
from providers.tokens import estimate_tokens
from tests.support.process import rulebased_in_subprocess


def make(schema: Any, prompt: str = "", *, data: str = "") -> Any:
    return value_for(schema, Facts(prompt, data=data))


def assert_valid(schema: Any, value: Any) -> None:
    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)  # the schema's draft's formats
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]
    assert not errors, (value, errors)


# ---- generated schemas -----------------------------------------------------------------------

NAMES = ["city", "query", "name", "count", "price", "tags", "when", "note", "kind", "items", "x"]
PATTERNS = [r"^[A-Z]{3}-\d{4}$", r"^\+?[0-9]{7,15}$", r"^[a-z][a-z0-9_]*$", r"colou?r", r"^(yes|no)$"]
FORMAT_NAMES = ["date", "date-time", "email", "uri", "uuid", "ipv4", "ipv6", "hostname", "time"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=8), st.sampled_from([0.5, -2.25])
)


@st.composite
def strings(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    choice = draw(st.sampled_from(["plain", "lengths", "format", "pattern"]))
    if choice == "lengths":
        low = draw(st.integers(0, 40))
        schema |= {"minLength": low, "maxLength": low + draw(st.integers(0, 40))}
    elif choice == "format":
        schema["format"] = draw(st.sampled_from(FORMAT_NAMES))
    elif choice == "pattern":
        schema["pattern"] = draw(st.sampled_from(PATTERNS))
    return schema


@st.composite
def integers(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    step = draw(st.sampled_from([None, 1, 2, 3, 5, 10]))
    if step:
        schema["multipleOf"] = step
    low = draw(st.one_of(st.none(), st.integers(-10_000, 10_000)))
    if low is not None:
        schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if draw(st.booleans()):  # wide enough for a multiple strictly inside
        top = (low if low is not None else draw(st.integers(-10_000, 10_000))) + 2 * (step or 1) + 2
        schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = top + draw(st.integers(0, 500))
    return schema


@st.composite
def numbers(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number"}
    step = draw(st.sampled_from([None, 0.5, 0.25, 0.1, 0.01, 2]))
    if step:
        schema["multipleOf"] = step
    low = draw(st.one_of(st.none(), st.floats(-1e6, 1e6)))
    if low is not None:
        schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if draw(st.booleans()):
        top = (low if low is not None else 0.0) + 3 * (step or 1) + draw(st.floats(0, 1e3))
        schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = top
    return schema


leaves = st.one_of(
    strings(),
    integers(),
    numbers(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(scalars, min_size=1, max_size=5, unique_by=repr).map(lambda members: {"enum": members}),
    scalars.map(lambda value: {"const": value}),
    st.just({}),
)


def tagged(key: str, child: dict[str, Any]) -> dict[str, Any]:
    """An object with just ``key``: branches with different keys never overlap (for oneOf)."""
    return {"type": "object", "properties": {key: child}, "required": [key], "additionalProperties": False}


def halves(
    children: st.SearchStrategy[dict[str, Any]], names: list[str]
) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(names), children, max_size=3)


def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    properties = st.dictionaries(st.sampled_from(NAMES), children, max_size=5)
    objects = st.builds(
        lambda props, data: {
            "type": "object",
            "properties": props,
            "required": [n for n in props if data.draw(st.booleans())],
            "additionalProperties": data.draw(st.booleans()),
        },
        properties,
        st.data(),
    )
    arrays = st.builds(
        lambda item, low, extra: {"type": "array", "items": item, "minItems": low, "maxItems": low + extra},
        children,
        st.integers(0, 4),
        st.integers(0, 4),
    )
    return st.one_of(
        objects,
        arrays,
        children.map(lambda c: {"anyOf": [c, {"type": "null"}]}),
        children.map(lambda c: {**c, "type": [c["type"], "null"]} if isinstance(c.get("type"), str) else c),
        st.lists(children, min_size=1, max_size=3).map(
            lambda items: {"type": "array", "prefixItems": items, "minItems": len(items), "items": False}
        ),
        st.tuples(
            st.sampled_from([{"type": "string"}, {"type": "integer", "minimum": 3}]), st.integers(0, 6)
        ).map(lambda pair: {"type": "array", "items": pair[0], "uniqueItems": True, "minItems": pair[1]}),
        children.map(lambda c: {"oneOf": [tagged("a", c), tagged("b", c)]}),
        st.tuples(halves(children, NAMES[:5]), halves(children, NAMES[5:])).map(
            lambda pair: {"allOf": [{"type": "object", "properties": p, "required": list(p)} for p in pair]}
        ),
    )


def with_defs(defs: dict[str, Any]) -> dict[str, Any]:
    """A root that holds ``defs`` and refers to each, as Pydantic writes models."""
    refs = {name: {"$ref": f"#/$defs/{name}"} for name in defs}
    listed = {"type": "array", "items": next(iter(refs.values()))}
    return {"$defs": defs, "type": "object", "properties": {**refs, "listed": listed}}


trees = st.recursive(leaves, extend, max_leaves=25)
schemas = st.one_of(
    trees, st.dictionaries(st.sampled_from(NAMES), trees, min_size=1, max_size=3).map(with_defs)
)
prompts = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["What's the weather in New York on 2024-05-01?", "add 2 and 40, then 7.5", ""]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=schemas, prompt=prompts)
def test_generated_values_validate_against_generated_schemas(schema: dict[str, Any], prompt: str) -> None:
    value = make(schema, prompt)
    assert_valid(schema, value)
    assert make(schema, prompt) == value  # deterministic


# ---- real-world schemas ----------------------------------------------------------------------


class Color(enum.StrEnum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    city: str
    postcode: Annotated[str, Field(pattern=r"^\d{5}$")]
    country: Literal["FR", "DE", "US"] = "FR"


class LineItem(BaseModel):
    sku: Annotated[str, Field(pattern=r"^[A-Z]{3}-\d{4}$")]
    quantity: Annotated[int, Field(ge=1, le=10)]
    price: Annotated[float, Field(gt=0, multiple_of=0.01)]
    color: Color | None = None


class Order(BaseModel):
    order_id: int
    placed_at: datetime.datetime
    deliver_on: datetime.date
    email: Annotated[str, Field(json_schema_extra={"format": "email"})]
    shipping: Address
    billing: Address | None = None
    items: Annotated[list[LineItem], Field(min_length=1, max_length=3)]
    notes: list[str] = []
    tags: dict[str, int] = {}
    pair: tuple[int, str]
    status: Literal["new", "paid", "shipped"]
    rating: Annotated[float, Field(ge=0, le=5)] | None = None


class TreeNode(BaseModel):
    label: str
    children: list[TreeNode] = []
    parent: TreeNode | None = None


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: Annotated[int, Field(ge=0, le=9)]


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Pet(BaseModel):
    pet: Cat | Dog = Field(discriminator="kind")
    owners: Annotated[list[str], Field(min_length=2, max_length=2)]


class CalendarEvent(BaseModel):  # OpenAI's structured-output guide example
    name: str
    date: str
    participants: list[str]


REAL_WORLD: dict[str, dict[str, Any]] = {
    "pydantic order": Order.model_json_schema(),
    "pydantic recursive tree": TreeNode.model_json_schema(),
    "pydantic discriminated union": Pet.model_json_schema(),
    "pydantic calendar event": CalendarEvent.model_json_schema(),
    "openai get_weather": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "City and country e.g. Bogotá, Colombia"},
            "units": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location", "units"],
        "additionalProperties": False,
    },
    "openai strict nullable": {
        "type": "object",
        "properties": {"query": {"type": "string"}, "limit": {"type": ["integer", "null"], "maximum": 50}},
        "required": ["query", "limit"],
        "additionalProperties": False,
    },
    "draft 7 definitions and tuple items": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"point": {"type": "array", "items": [{"type": "number"}, {"type": "number"}]}},
        "type": "object",
        "properties": {
            "path": {"type": "array", "items": {"$ref": "#/definitions/point"}, "minItems": 3},
            "closed": {"type": "boolean"},
        },
        "required": ["path"],
    },
    "draft 4 boolean exclusive bounds": {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"ratio": {"type": "number", "minimum": 0, "maximum": 1, "exclusiveMaximum": True}},
        "required": ["ratio"],
    },
    "older pydantic allOf ref": {
        "definitions": {"Unit": {"title": "Unit", "enum": ["kg", "lb"], "type": "string"}},
        "type": "object",
        "properties": {"unit": {"allOf": [{"$ref": "#/definitions/Unit"}], "description": "the unit"}},
        "required": ["unit"],
    },
    "if then else": {
        "type": "object",
        "properties": {"country": {"enum": ["US", "CA"]}, "postal_code": {"type": "string"}},
        "if": {"properties": {"country": {"const": "US"}}},
        "then": {"properties": {"postal_code": {"pattern": "^[0-9]{5}$"}}},
        "else": {"properties": {"postal_code": {"pattern": "^[A-Z][0-9][A-Z] [0-9][A-Z][0-9]$"}}},
    },
    "map with pattern properties": {
        "type": "object",
        "patternProperties": {"^S_": {"type": "string"}, "^I_": {"type": "integer"}},
        "additionalProperties": False,
        "minProperties": 1,
    },
    "unique enum array with contains": {
        "type": "array",
        "items": {"enum": ["a", "b", "c", "d"]},
        "uniqueItems": True,
        "minItems": 3,
        "contains": {"const": "d"},
    },
    "dependent required": {
        "type": "object",
        "properties": {"card": {"type": "string"}},
        "dependentRequired": {"card": ["billing_address"]},
    },
    "recursive root ref": {
        "type": "object",
        "properties": {"value": {"type": "integer"}, "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}},
        "required": ["value", "next"],
    },
}


@pytest.mark.parametrize("name", list(REAL_WORLD))
def test_real_world_schemas_get_valid_values(name: str) -> None:
    schema = REAL_WORLD[name]
    value = make(schema, "Ship 2 blue widgets to Ada Lovelace in Paris on 2025-03-04, mail ada@example.org")
    assert_valid(schema, value)


def test_pydantic_models_accept_the_values() -> None:
    prompt = "Order 7 for Ada Lovelace in Berlin, 2 green items at 12.5 on 2025-03-04"
    order = Order.model_validate(make(Order.model_json_schema(), prompt))
    assert order.order_id == 7  # the prompt's numbers fill numeric fields in order
    assert order.items[0].quantity == 2
    assert order.items[0].price == 12.5
    assert order.items[0].color is Color.GREEN  # the enum member the prompt mentions
    assert order.deliver_on == datetime.date(2025, 3, 4)
    assert order.placed_at == datetime.datetime(2025, 3, 4, 9, tzinfo=datetime.UTC)
    assert order.shipping.city == "Berlin"
    assert order.billing is not None  # optional fields are filled too
    assert TreeNode.model_validate(make(TreeNode.model_json_schema(), "a tree"))
    assert Pet.model_validate(make(Pet.model_json_schema(), "my dog")).pet.kind == "cat"  # the first branch


def test_a_recursive_model_is_bounded() -> None:
    tree = make(TreeNode.model_json_schema(), "Ada Lovelace")
    assert tree == {
        "label": "Ada Lovelace",
        "children": [{"label": "Ada Lovelace"}, {"label": "Ada Lovelace 2"}],
        "parent": {"label": "Ada Lovelace"},
    }


# ---- values from the prompt ------------------------------------------------------------------


def test_strings_take_the_prompt_fact_their_name_asks_for() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "query": {"type": "string"},
            "author": {"type": "string"},
            "expression": {"type": "string"},
            "note": {"type": "string"},
        },
    }
    prompt = "What did Ada Lovelace write in London? Then compute 12 * (3 + 4)."
    assert make(schema, prompt) == {
        "city": "London",
        "query": prompt,
        "author": "Ada Lovelace",
        "expression": "12 * (3 + 4)",
        "note": "What did Ada Lovelace write in London",
    }


def test_numbers_fill_fields_in_order_skipping_those_that_do_not_fit() -> None:
    schema = {
        "type": "object",
        "properties": {
            "small": {"type": "integer", "maximum": 10},
            "ratio": {"type": "number"},
            "big": {"type": "integer", "minimum": 100},
            "other": {"type": "integer", "minimum": 5, "maximum": 9},
        },
    }
    # 250 does not fit `small`, so 3 does; 2.5 fills `ratio`; 250 is behind the cursor now.
    assert make(schema, "250 then 3 and 2.5") == {"small": 3, "ratio": 2.5, "big": 100, "other": 7}


def test_enums_pick_the_mentioned_member_else_the_first() -> None:
    schema = {"type": "string", "enum": ["celsius", "fahrenheit"]}
    assert make(schema, "in Fahrenheit please") == "fahrenheit"
    assert make(schema, "fahrenheitish") == "celsius"
    assert make(schema, "") == "celsius"


def test_formats_are_plausible() -> None:
    schema = {
        "type": "object",
        "properties": {f: {"type": "string", "format": f} for f in [*FORMAT_NAMES, "duration"]},
    }
    value = make(schema, "")
    assert_valid(schema, value)
    assert value["date"] == "2025-01-15"
    assert datetime.datetime.fromisoformat(value["date-time"]) == datetime.datetime(
        2025, 1, 15, 9, tzinfo=datetime.UTC
    )
    assert value["email"] == "user@example.com"
    assert value["uri"] == "https://example.com/"
    assert datetime.time.fromisoformat(value["time"]) == datetime.time(9, tzinfo=datetime.UTC)
    found = make(schema, "see https://tokenwire.dev/docs. or mail a.b@c.io")
    assert (found["uri"], found["email"]) == ("https://tokenwire.dev/docs", "a.b@c.io")


def test_tool_results_come_before_the_prompt_for_numbers() -> None:
    schema = {
        "type": "object",
        "properties": {"temperature": {"type": "number"}, "sky": {"enum": ["rain", "clear"]}},
    }
    assert make(schema, "weather for 3 days?", data='{"temp": 21, "sky": "clear"}') == {
        "temperature": 21,
        "sky": "clear",
    }


def test_unique_items_differ() -> None:
    schema = {"type": "array", "items": {"type": "string"}, "minItems": 4, "uniqueItems": True}
    value = make(schema, "red, green")
    assert value == ["red", "green", "red 2", "green 2"]


def test_maps_get_one_entry() -> None:
    assert make({"type": "object", "additionalProperties": {"type": "integer"}}, "") == {"key1": 1}
    assert make({"type": "object", "patternProperties": {"^S_": {"type": "string"}}}, "hi") == {"S_": "hi"}


def test_lengths_are_met() -> None:
    schema = {"type": "string", "minLength": 30, "maxLength": 32}
    value = make(schema, "short")
    assert 30 <= len(value) <= 32
    assert value.startswith("short short")


def test_pattern_samples_match() -> None:
    assert pattern_sample.sample(r"^[A-Z]{3}-\d{4}$") == "AAA-0000"
    assert pattern_sample.sample(r"^(ab|cd)+\1$", 6) == "ababab"
    assert pattern_sample.sample(r"^[^a-z]x$") == "Ax"
    assert pattern_sample.sample(r"\p{L}") is None  # ECMA-only syntax: no sample
    assert pattern_sample.sample(r"^a{3}$", 4) is None


# ---- odd schemas never crash -----------------------------------------------------------------

ODD: list[Any] = [
    True,
    False,
    {},
    {"type": "file"},
    {"type": []},
    {"$ref": "#/$defs/missing"},
    {"$ref": "https://example.com/schema.json"},
    {"$ref": "#anchor"},
    {"not": {"type": "string"}},
    {"type": "integer", "minimum": 5, "maximum": 1},
    {"type": "number", "exclusiveMinimum": 1, "exclusiveMaximum": 1},
    {"type": "integer", "multipleOf": 0.3, "minimum": 0, "maximum": 0.5},
    {"type": "array", "minItems": 10_000_000},
    {"type": "string", "minLength": 10_000_000},
    {"type": "string", "pattern": "(?P<x"},
    {"allOf": [{"type": "string"}, {"type": "integer"}]},
    {
        "$defs": {"A": {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "required": ["a"]}},
        "$ref": "#/$defs/A",
    },
    {"$defs": {"A": {"allOf": [{"$ref": "#/$defs/A"}]}}, "$ref": "#/$defs/A"},
    {"x-custom": 1, "contentMediaType": "image/png", "unevaluatedProperties": False, "type": "object"},
    {"enum": []},
    {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}, "minProperties": 2},
    {"oneOf": [{"type": "integer"}, {"type": "number"}]},
    {"anyOf": "not a list"},
    {"properties": [1, 2], "required": "x", "items": 3},
]


@pytest.mark.parametrize("schema", ODD, ids=lambda s: str(s)[:60])
def test_odd_schemas_never_crash(schema: Any) -> None:
    value = make(schema, "Some prompt with 3 numbers 4 and 5")
    assert make(schema, "Some prompt with 3 numbers 4 and 5") == value


def test_one_of_takes_the_first_branch_that_matches_alone() -> None:
    one_of = {"oneOf": [{"const": "hello"}, {"type": "string"}]}
    assert make(one_of, "hello world") == "hello world"  # "hello" would match both branches
    assert make({"oneOf": [{"type": "null"}, {"type": "integer"}]}, "") == 1  # null comes last


def test_property_names_are_honoured() -> None:
    names = {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}, "minProperties": 2}
    assert_valid(names, make(names, ""))


# ---- the provider: tool calls ----------------------------------------------------------------

WEATHER = Tool(
    name="get_weather",
    description="Current weather",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "units": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city"],
    },
)
CALCULATOR = Tool(
    name="calculator",
    parameters={
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
)
CLOCK = Tool(name="clock", description="The time now")  # no parameters
PAIR = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
}
ADD = Tool(name="add", parameters=PAIR)
MULTIPLY = Tool(name="multiply", parameters=PAIR)


async def no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected sleep({seconds})")


class Sleeps:
    """A fake sleep that logs its calls into the list the test logs events into."""

    def __init__(self, log: list[object]) -> None:
        self.log = log

    async def __call__(self, seconds: float) -> None:
        self.log.append(("sleep", seconds))


PROVIDER = RuleBasedProvider(sleep=no_sleep, chunk_delay_ms=0)


def ask(prompt: str, **fields: Any) -> GenerationRequest:
    return GenerationRequest(model="script", messages=prompt_messages(prompt), **fields)


async def events_of(request: GenerationRequest) -> list[StreamEvent]:
    return [event async for event in PROVIDER.stream(request)]


async def usage_of(request: GenerationRequest) -> Usage:
    usage = (await events_of(request))[-2]
    assert isinstance(usage, Usage)
    return usage


def ends(events: list[StreamEvent]) -> list[ToolCallEnd]:
    return [e for e in events if isinstance(e, ToolCallEnd)]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def reasoning_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, ReasoningDelta))


def calls_of(events: list[StreamEvent]) -> list[tuple[str, object]]:
    return [(e.name, e.arguments) for e in ends(events)]


async def test_a_named_tool_is_called_with_arguments_valid_for_its_schema() -> None:
    events = await events_of(
        ask("Weather in Paris for 3 days, in Fahrenheit? Use get_weather.", tools=[WEATHER])
    )
    start, *deltas, end, usage, finish = events
    assert isinstance(start, ToolCallStart)
    assert (start.index, start.name) == (0, "get_weather")
    assert start.call_id.startswith("call_")
    assert all(isinstance(d, ToolCallDelta) and d.call_id == start.call_id for d in deltas)
    assert len(deltas) >= 4  # the arguments fill in a JSON word at a time
    text = "".join(d.text for d in deltas if isinstance(d, ToolCallDelta))
    assert end == ToolCallEnd(
        start.call_id, "get_weather", {"city": "Paris", "units": "fahrenheit", "days": 3}
    )
    assert json.loads(text) == end.arguments
    assert_valid(WEATHER.parameters, end.arguments)
    assert isinstance(usage, Usage)
    assert finish == Finish("tool_calls")
    assert text_of(events) == ""  # no text before or after the call


@pytest.mark.parametrize(
    ("prompt", "named"),
    [
        ("Use GET_WEATHER now", True),
        ("get_weather?", True),
        ("(get_weather) for Rome", True),
        ("call `Get_Weather`", True),
        ("get_weathers", False),
        ("my_get_weather", False),
        ("get-weather", False),
        ("get_weather-v2", False),
        ("get weather in Rome", False),
    ],
)
async def test_a_tool_is_named_by_its_name_in_any_case_as_a_whole_word(prompt: str, named: bool) -> None:
    events = await events_of(ask(prompt, tools=[WEATHER]))
    assert bool(ends(events)) is named
    assert events[-1] == Finish("tool_calls" if named else "stop")


async def test_without_a_named_tool_the_answer_is_the_plain_one() -> None:
    request = ask("What is a heat pump?", tools=[WEATHER, CLOCK])
    events = await events_of(request)
    assert not any(isinstance(e, ToolCallStart | ToolCallDelta | ToolCallEnd) for e in events)
    assert text_of(events) == draft_text(ask("What is a heat pump?"))
    assert events[-1] == Finish("stop")


async def test_tool_choice_none_never_calls() -> None:
    events = await events_of(ask("Use get_weather for Paris", tools=[WEATHER], tool_choice="none"))
    assert not ends(events)
    assert text_of(events) == draft_text(ask("Use get_weather for Paris"))


async def test_tool_choice_required_calls_the_named_tools_else_the_first() -> None:
    named = await events_of(
        ask("What time is it? Ask the clock.", tools=[WEATHER, CLOCK], tool_choice="required")
    )
    assert calls_of(named) == [("clock", {})]
    unnamed = await events_of(ask("Rome, 4 days", tools=[WEATHER, CLOCK], tool_choice="required"))
    assert calls_of(unnamed) == [("get_weather", {"city": "Rome", "units": "celsius", "days": 4})]
    assert unnamed[-1] == Finish("tool_calls")


async def test_tool_choice_by_name_calls_that_tool_only() -> None:
    request = ask(
        "Use get_weather and the clock", tools=[WEATHER, CLOCK], tool_choice=ToolChoiceName("clock")
    )
    assert calls_of(await events_of(request)) == [("clock", {})]


async def test_several_named_tools_are_called_in_one_turn_in_the_order_named() -> None:
    request = ask(
        "First the calculator: 12 * (3 + 4). Then get_weather for Oslo.", tools=[WEATHER, CALCULATOR]
    )
    events = await events_of(request)
    kinds = [type(e).__name__ for e in events if not isinstance(e, ToolCallDelta)]
    assert kinds == ["ToolCallStart", "ToolCallEnd", "ToolCallStart", "ToolCallEnd", "Usage", "Finish"]
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.index, s.name) for s in starts] == [(0, "calculator"), (1, "get_weather")]
    assert starts[0].call_id != starts[1].call_id
    assert calls_of(events) == [
        ("calculator", {"expression": "12 * (3 + 4)"}),
        ("get_weather", {"city": "Oslo", "units": "celsius", "days": 3}),  # 3 is the next number that fits
    ]


async def test_the_prompts_numbers_are_shared_out_in_call_order() -> None:
    events = await events_of(ask("add 2 and 3, then multiply 4 by 5", tools=[MULTIPLY, ADD]))
    assert calls_of(events) == [("add", {"a": 2, "b": 3}), ("multiply", {"a": 4, "b": 5})]


async def test_a_tool_without_parameters_gets_an_empty_object() -> None:
    events = await events_of(ask("clock", tools=[CLOCK]))
    assert [e for e in events if isinstance(e, ToolCallDelta)] == [
        ToolCallDelta(ends(events)[0].call_id, "{}")
    ]
    assert calls_of(events) == [("clock", {})]


async def test_call_ids_are_deterministic_and_new_each_turn() -> None:
    first = ends(await events_of(ask("clock", tools=[CLOCK])))[0].call_id
    assert ends(await events_of(ask("clock", tools=[CLOCK])))[0].call_id == first
    later = [
        *prompt_messages("clock"),
        ChatMessage(role="assistant", content="It is noon."),
        *prompt_messages("clock"),
    ]
    request = GenerationRequest(model="m", messages=later, tools=[CLOCK])
    assert ends(await events_of(request))[0].call_id != first


async def test_max_tokens_cuts_a_call_and_finishes_with_length() -> None:
    request = ask("get_weather for " + "Saint " * 20 + "Malo", tools=[WEATHER], options=Options(max_tokens=5))
    events = await events_of(request)
    (end,) = ends(events)
    fragments = "".join(e.text for e in events if isinstance(e, ToolCallDelta))
    assert len(fragments) == 20  # 5 tokens, about 4 characters each
    assert end.arguments is None
    assert end.error is not None
    assert events[-1] == Finish("length")


# ---- the provider: tool results --------------------------------------------------------------


def answered(messages: list[ChatMessage], events: list[StreamEvent], results: list[str]) -> list[ChatMessage]:
    """``messages`` continued as a client's tool loop does: the assistant turn with its calls
    (as ``done.tool_calls``), then one ``tool`` message per call."""
    calls = [ToolCall(call_id=e.call_id, name=e.name, arguments=e.arguments) for e in ends(events)]
    tool_turns = [
        ChatMessage(role="tool", tool_call_id=call.call_id, content=result)
        for call, result in zip(calls, results, strict=True)
    ]
    return [*messages, ChatMessage(role="assistant", content="", tool_calls=calls), *tool_turns]


async def test_a_two_turn_tool_loop_quotes_the_result_and_ends() -> None:
    messages = prompt_messages("What's the weather in Paris? Use get_weather.")
    first = await events_of(GenerationRequest(model="m", messages=messages, tools=[WEATHER]))
    assert first[-1] == Finish("tool_calls")
    result = '{"temperature": 21, "sky": "clear"}'
    # The prompt still names the tool and a call is required: a result is answered all the same.
    second_request = GenerationRequest(
        model="m", messages=answered(messages, first, [result]), tools=[WEATHER], tool_choice="required"
    )
    second = await events_of(second_request)
    assert not ends(second)
    assert text_of(second) == f"The get_weather tool returned: {result}"
    assert second[-1] == Finish("stop")


async def test_every_trailing_result_is_quoted_up_to_200_characters() -> None:
    messages = prompt_messages("Use get_weather and the clock")
    first = await events_of(GenerationRequest(model="m", messages=messages, tools=[WEATHER, CLOCK]))
    long = "x" * 250
    loop = answered(messages, first, ["sunny", long])
    text = text_of(await events_of(GenerationRequest(model="m", messages=loop, tools=[WEATHER, CLOCK])))
    assert text == f"The get_weather tool returned: sunny\nThe clock tool returned: {'x' * 200}…"


async def test_a_result_for_an_unknown_call_is_quoted_without_a_name() -> None:
    messages = [*prompt_messages("hi"), ChatMessage(role="tool", tool_call_id="nobody", content="42")]
    assert (
        text_of(await events_of(GenerationRequest(model="m", messages=messages))) == "The tool returned: 42"
    )


async def test_only_trailing_results_are_answered() -> None:
    messages = prompt_messages("Use get_weather for Lima")
    first = await events_of(GenerationRequest(model="m", messages=messages, tools=[WEATHER]))
    loop = [*answered(messages, first, ["warm"]), *prompt_messages("And the clock?")]
    events = await events_of(GenerationRequest(model="m", messages=loop, tools=[WEATHER, CLOCK]))
    assert calls_of(events) == [("clock", {})]


# ---- the provider: reasoning -----------------------------------------------------------------


async def test_reasoning_streams_first_in_several_deltas_and_counts_in_usage() -> None:
    request = ask("Why is the sky blue?", reasoning=Reasoning())
    events = await events_of(request)
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert all(isinstance(e, ReasoningDelta) for e in events[:first_text])
    assert first_text >= 3
    reasoning, text = reasoning_of(events), text_of(events)
    assert reasoning == (
        'The user asks: "Why is the sky blue?". I will answer with a short introduction and three points. '
        "I will check that each part follows from the request."
    )
    assert text == draft_text(ask("Why is the sky blue?"))
    usage = events[-2]
    assert isinstance(usage, Usage)
    assert usage.reasoning_tokens == estimate_tokens(reasoning)
    assert usage.completion_tokens == estimate_tokens(text) + estimate_tokens(reasoning)


@pytest.mark.parametrize(("effort", "sentences"), [("low", 2), ("medium", 3), (None, 3), ("high", 4)])
async def test_effort_sets_the_length_of_the_reasoning(effort: Any, sentences: int) -> None:
    events = await events_of(ask("Hello", reasoning=Reasoning(effort=effort)))
    assert reasoning_of(events).count(". ") + 1 == sentences


async def test_budget_tokens_cuts_the_reasoning() -> None:
    events = await events_of(ask("Hello", reasoning=Reasoning(effort="high", budget_tokens=6)))
    reasoning = reasoning_of(events)
    assert 0 < estimate_tokens(reasoning) <= 6
    assert reasoning == 'The user asks: "Hello". '


async def test_reasoning_comes_before_calls_and_says_why() -> None:
    events = await events_of(
        ask("Use get_weather for Quito", tools=[WEATHER], reasoning=Reasoning(effort="low"))
    )
    assert isinstance(events[0], ReasoningDelta)
    first_call = next(i for i, e in enumerate(events) if isinstance(e, ToolCallStart))
    assert all(isinstance(e, ReasoningDelta) for e in events[:first_call])
    assert reasoning_of(events) == (
        'The user asks: "Use get_weather for Quito". '
        "The prompt names get_weather, so I will call it with arguments that fit the schema."
    )


async def test_the_reasoning_says_why_a_tool_is_called_or_answered() -> None:
    low = Reasoning(effort="low")
    required = ask("Hi", tools=[WEATHER, CLOCK], tool_choice="required", reasoning=low)
    assert reasoning_of(await events_of(required)).endswith(
        "A tool call is required and none is named, so I will call get_weather, the first tool."
    )
    chosen = ask("Hi", tools=[WEATHER, CLOCK], tool_choice=ToolChoiceName("clock"), reasoning=low)
    assert reasoning_of(await events_of(chosen)).endswith(
        "The tool choice asks for clock, so I will call it."
    )
    messages = prompt_messages("Use get_weather and the clock")
    first = await events_of(GenerationRequest(model="m", messages=messages, tools=[WEATHER, CLOCK]))
    loop = GenerationRequest(model="m", messages=answered(messages, first, ["sunny", "noon"]), reasoning=low)
    assert reasoning_of(await events_of(loop)) == (
        "The get_weather and clock tools returned results. I will answer by quoting what was returned."
    )


async def test_without_reasoning_there_is_none() -> None:
    events = await events_of(ask("Use get_weather for Quito", tools=[WEATHER]))
    assert reasoning_of(events) == ""
    assert (await usage_of(ask("Use get_weather for Quito", tools=[WEATHER]))).reasoning_tokens is None


# ---- the provider: structured output ---------------------------------------------------------


async def test_json_schema_output_streams_valid_json_in_chunks() -> None:
    schema = Order.model_json_schema()
    request = ask(
        "Order 7 for Ada Lovelace in Berlin", response_format=JsonSchemaFormat(name="order", schema=schema)
    )
    events = await events_of(request)
    chunks = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(chunks) > 5
    value, error = parse_object("".join(chunks), schema)
    assert error is None
    assert Order.model_validate(value).shipping.city == "Berlin"
    assert events[-1] == Finish("stop")
    assert await events_of(request) == events  # deterministic


async def test_even_a_small_json_object_streams_in_pieces() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "qty": {"type": "integer"}}}
    events = await events_of(ask("Order for Ada in Rome", response_format=JsonSchemaFormat(schema=schema)))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ['{"city": ', '"Rome", ', '"qty": ', "1}"]


async def test_tool_names_are_never_names_or_places_in_values() -> None:
    schema = {"type": "object", "properties": {"person": {"type": "string"}}}
    tools = [Tool(name="Archive")]
    request = ask("Send it to Archive for Ada", tools=tools, tool_choice="none")
    as_json = msgspec.structs.replace(request, response_format=JsonSchemaFormat(schema=schema))
    assert json.loads(text_of(await events_of(as_json))) == {"person": "Ada"}
    call = ask("Send it to Archive for Ada", tools=[Tool(name="Archive", parameters=schema)])
    assert calls_of(await events_of(call)) == [("Archive", {"person": "Ada"})]


async def test_json_output_wraps_the_plain_answer() -> None:
    events = await events_of(ask("What is a heat pump?", response_format=JsonFormat()))
    assert json.loads(text_of(events)) == {
        "question": "What is a heat pump?",
        "answer": draft_text(ask("What is a heat pump?")),
    }


async def test_json_schema_after_a_tool_result_uses_the_result() -> None:
    messages = prompt_messages("Use get_weather for Paris")
    first = await events_of(GenerationRequest(model="m", messages=messages, tools=[WEATHER]))
    schema = {
        "type": "object",
        "properties": {"temperature": {"type": "number"}},
        "required": ["temperature"],
    }
    request = GenerationRequest(
        model="m",
        messages=answered(messages, first, ['{"temp": 21.5}']),
        tools=[WEATHER],
        response_format=JsonSchemaFormat(schema=schema),
    )
    assert json.loads(text_of(await events_of(request))) == {"temperature": 21.5}


async def test_max_tokens_cuts_json_output() -> None:
    request = ask("Hello", response_format=JsonFormat(), options=Options(max_tokens=8))
    events = await events_of(request)
    assert events[-1] == Finish("length")
    assert parse_object(text_of(events), None)[1] is not None


async def test_the_prompt_estimate_counts_the_tools_and_the_schema() -> None:
    bare = await usage_of(ask("Hello"))
    with_tools = await usage_of(ask("Hello", tools=[WEATHER]))
    schema = CalendarEvent.model_json_schema()
    with_schema = await usage_of(ask("Hello", response_format=JsonSchemaFormat(schema=schema)))
    tools_json = msgspec.json.encode([WEATHER]).decode()
    assert with_tools.prompt_tokens == estimate_tokens("Hello\n" + tools_json)
    assert with_schema.prompt_tokens == estimate_tokens("Hello\n" + msgspec.json.encode(schema).decode())
    assert bare.prompt_tokens == estimate_tokens("Hello")


# ---- the provider: complete(), pacing, faults, v1 ----------------------------------------------

TURNS = [
    ask(
        "First the calculator: 2 + 2. Then get_weather for Oslo.",
        tools=[WEATHER, CALCULATOR],
        reasoning=Reasoning(),
    ),
    ask(
        "Hello",
        response_format=JsonSchemaFormat(schema=CalendarEvent.model_json_schema()),
        reasoning=Reasoning(),
    ),
    ask("Why?", response_format=JsonFormat()),
    ask("get_weather", tools=[WEATHER], options=Options(max_tokens=3)),
]


@pytest.mark.parametrize("request_", TURNS, ids=["calls", "json_schema", "json", "cut call"])
async def test_complete_returns_what_the_stream_sends(request_: GenerationRequest) -> None:
    events = await events_of(request_)
    completion = await PROVIDER.complete(request_)
    assert completion.text == text_of(events)
    assert completion.finish_reason == events[-1].reason  # type: ignore[union-attr]
    assert completion.usage == events[-2]
    expected: list[StreamEvent] = [ReasoningDelta(reasoning_of(events))] if reasoning_of(events) else []
    for end in ends(events):
        start = next(e for e in events if isinstance(e, ToolCallStart) and e.call_id == end.call_id)
        fragments = "".join(
            e.text for e in events if isinstance(e, ToolCallDelta) and e.call_id == end.call_id
        )
        expected += [start, ToolCallDelta(end.call_id, fragments), end]
    assert completion.parts == expected


async def test_every_chunk_is_paced_and_starts_and_ends_are_not() -> None:
    log: list[object] = []
    provider = RuleBasedProvider(sleep=Sleeps(log), chunk_delay_ms=30)
    async for event in provider.stream(TURNS[0]):
        log.append(type(event))
    expected: list[object] = []
    for event in await events_of(TURNS[0]):
        if isinstance(event, ReasoningDelta | ToolCallDelta | TextDelta) and expected:
            expected.append(("sleep", 0.03))  # between chunks: the first is immediate
        expected.append(type(event))
    assert log == expected


async def until_error(request: GenerationRequest) -> tuple[list[StreamEvent], ProviderError | None]:
    events: list[StreamEvent] = []
    try:
        async for event in PROVIDER.stream(request):
            events.append(event)
    except ProviderError as exc:
        return events, exc
    return events, None


async def test_faults_count_every_kind_of_chunk() -> None:
    whole = await events_of(TURNS[0])
    reasoning = sum(isinstance(e, ReasoningDelta) for e in whole)
    events, error = await until_error(msgspec.structs.replace(TURNS[0], fault=Fault(error_after_chunks=2)))
    assert events == whole[:2]
    assert [type(e) for e in events] == [ReasoningDelta, ReasoningDelta]
    assert isinstance(error, UpstreamUnavailable)
    # Cut inside a call: its start and first fragments arrive, its end never does.
    cut = msgspec.structs.replace(TURNS[0], fault=Fault(truncate_after_chunks=reasoning + 2))
    events, error = await until_error(cut)
    assert events == whole[: reasoning + 3]
    assert [type(e) for e in events[reasoning:]] == [ToolCallStart, ToolCallDelta, ToolCallDelta]
    assert isinstance(error, UpstreamProtocolError)


# Fingerprints of v1 streams and completions, taken from the provider before v1.1: a request
# without the new fields must stay byte for byte what it was.
V1_FINGERPRINTS = [
    ("427ee9d7ca9bf7adced50eaa9df3b60403d1a30588486a95f5728900f132e9c8", 65),
    ("2327350038ee211bc55e0fce48e73909db3e8224b6572914b5f71b654da20c02", 19),
    ("866e9cf733d1a598659eaacf8a325643c820c2aa1a3f6ca85e5db6e06b2a0481", 4),
    ("c18c8d382bf548b75b18e85795eb813a4b8a6496b079dce8eb5980e61432bfa6", 15),
    ("2ab601097a6d8fcf23608660628b0643c591241140cf6378e7955b022118332f", 21),
]


def v1_requests() -> list[GenerationRequest]:
    brief = Brief(topic="Tidal energy", audience="engineers", tone="formal")
    plan = Plan(target_duration_seconds=45, pacing="fast", density="dense")
    chat = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Hello"),
        ChatMessage(role="assistant", content="Hi"),
        ChatMessage(role="user", content="What is entropy?"),
    ]
    return [
        GenerationRequest(model="script", messages=script_messages(brief, plan), brief=brief, plan=plan),
        ask("Why is the sky blue?"),
        ask("Explain TCP slow start", options=Options(max_tokens=30)),
        ask("Explain TCP slow start", options=Options(stop=["3."])),
        GenerationRequest(model="m", messages=chat),
    ]


async def test_v1_requests_stream_exactly_as_before() -> None:
    sleeps: list[object] = []
    provider = RuleBasedProvider(sleep=Sleeps(sleeps), chunk_delay_ms=20, words_per_chunk=4)
    for request, (fingerprint, sleep_count) in zip(v1_requests(), V1_FINGERPRINTS, strict=True):
        sleeps.clear()
        items: list[object] = [event async for event in provider.stream(request)]
        items.append(await provider.complete(request))
        encoded = msgspec.json.encode([[type(item).__name__, item] for item in items])
        assert (hashlib.sha256(encoded).hexdigest(), len(sleeps)) == (fingerprint, sleep_count)


@pytest.mark.parametrize("hash_seed", ["1", "2"])
def test_turns_are_the_same_across_processes(hash_seed: str) -> None:
    expected = msgspec.json.encode([plan_turn(r) for r in TURNS])
    assert rulebased_in_subprocess("plan_turn", list(TURNS), hash_seed) == expected
