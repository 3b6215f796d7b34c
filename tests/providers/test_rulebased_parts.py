"""The offline provider's typed parts (protocol v1.1): values generated for JSON Schemas (a
property test over generated schemas, and a corpus of real-world and Pydantic schemas)."""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, Any, Literal

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from providers.offline import pattern_sample
from providers.offline.prompt_facts import Facts
from providers.offline.schema_values import value_for


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
