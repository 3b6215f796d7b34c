"""Values valid for a JSON Schema, made deterministically from a prompt: the offline provider's
tool arguments and structured output.

Every declared property is filled, required or not; an array gets two items within its
minItems/maxItems; strings, enums and numbers draw on the prompt (``prompt_facts``) and fall
back to fixed plausible values. ``$ref`` resolves inside the schema only, as Pydantic writes it.
A definition met again inside itself is made *minimal* (required properties only, the fewest
items, null where allowed), which bounds recursive models. If the value still fails the schema,
the minimal value is tried, and whichever validates is used. Nothing here raises on an odd
schema: what is not understood allows anything. docs/STREAMING_GUIDE.md states the rules.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import re
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any, TypeGuard

import jsonschema
import msgspec

from providers.offline import pattern_sample
from providers.offline.prompt_facts import DEFAULT_DATE, Facts

DEFAULT_ITEMS = 2  # items in an array, within its bounds
MAX_ITEMS = 256  # items or extra properties made at most, whatever minItems says
MAX_STRING = 10_000  # characters
MAX_DEPTH = 64  # nested values; deeper ones are null
MAX_VALUES = 2_000  # values made before everything further is minimal (many-times-used definitions)
MAX_REF_HOPS = 32

_LOWER = frozenset({"minimum", "minLength", "minItems", "minProperties", "minContains"})
_UPPER = frozenset({"maximum", "maxLength", "maxItems", "maxProperties", "maxContains"})
_SUBSCHEMAS = frozenset({"items", "additionalProperties", "contains", "propertyNames", "additionalItems"})
_INFERRED = (
    ("object", ("properties", "required", "additionalProperties", "patternProperties", "minProperties")),
    ("array", ("items", "prefixItems", "minItems", "maxItems", "contains", "uniqueItems")),
    ("string", ("minLength", "maxLength", "pattern", "format")),
    ("number", ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")),
)
# Property-name words that pick which prompt fact a string takes (see _text_candidates).
# fmt: off
_PLACE = frozenset({
    "city", "location", "place", "country", "town", "destination", "origin", "address", "region",
    "area", "timezone", "tz", "venue",
})
_NAME = frozenset({"name", "title", "person", "author", "user", "username", "label", "subject", "company"})
_QUERY = frozenset({
    "query", "q", "search", "question", "prompt", "text", "input", "message", "content", "topic",
    "keyword", "term", "request", "instruction",
})
_EXPRESSION = frozenset({"expression", "expr", "formula", "equation", "calculation"})
# fmt: on


def value_for(schema: object, facts: Facts) -> Any:
    """A value for ``schema``: the full one if it validates, else the minimal one if that does."""
    start = facts.cursor
    full = _Maker(schema, facts).value(schema, "", 0, minimal=False)
    if _holds(_validator(schema), schema, full):
        return full
    end, facts.cursor = facts.cursor, start
    minimal = _Maker(schema, facts).value(schema, "", 0, minimal=True)
    if _holds(_validator(schema), schema, minimal):
        return minimal
    facts.cursor = end
    return full


# ---- the generator ---------------------------------------------------------------------------


class _Maker:
    def __init__(self, root: object, facts: Facts) -> None:
        self.root = root
        self.facts = facts
        self.refs: list[str] = []  # the $refs being expanded, outermost first
        self.depth = 0
        self.made = 0
        self._checker: Any = None

    def value(self, schema: object, name: str, variant: int, minimal: bool) -> Any:
        """A value for ``schema``; ``name`` is the property it fills, ``variant`` the item's
        position in its array (so items differ), ``minimal`` the fewest properties and items."""
        if self.depth >= MAX_DEPTH:
            return None
        self.depth += 1
        self.made += 1
        try:
            return self._value(schema, name, variant, minimal or self.made > MAX_VALUES)
        finally:
            self.depth -= 1

    def _value(self, schema: object, name: str, variant: int, minimal: bool) -> Any:
        if schema is False:
            return None  # nothing is valid; null is as good as anything
        if not isinstance(schema, dict):
            return self._text(name, variant)
        if "$ref" in schema or "allOf" in schema:
            return self._merged(schema, name, variant, minimal)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return self._enum(enum, schema, variant)
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return self._choice(schema, key, name, variant, minimal)
        if "if" in schema and "then" in schema:
            # Meet `if` and `then` together: then `else` never applies.
            parts = [_without(schema, "if", "then", "else"), schema["if"], schema["then"]]
            return self.value({"allOf": parts}, name, variant, minimal)
        kind = _kind(schema, minimal)
        if kind == "object":
            return self._object(schema, variant, minimal)
        if kind == "array":
            return self._array(schema, name, minimal)
        if kind in ("integer", "number"):
            return self._number(schema, kind == "integer", variant)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        if kind == "string":
            return self._string(schema, name, variant)
        return self._text(name, variant)  # any type (or an unknown one): a phrase of the prompt

    # -- composition --

    def _merged(self, schema: dict[str, Any], name: str, variant: int, minimal: bool) -> Any:
        """``$ref`` and ``allOf`` folded into one schema; a $ref already being expanded makes
        what is under it minimal."""
        parts: list[Any] = [_without(schema, "allOf", "$ref")]
        if isinstance(schema.get("allOf"), list):
            parts += schema["allOf"]
        if "$ref" in schema:
            parts.append({"$ref": schema["$ref"]})
        merged: Any = True
        refs: list[str] = []
        for part in parts:
            part, used = self._deref(part)
            refs += used
            merged = merge(merged, part)
        recursive = any(ref in self.refs for ref in refs)
        self.refs += refs
        try:
            return self.value(merged, name, variant, minimal or recursive)
        finally:
            del self.refs[len(self.refs) - len(refs) :]

    def _deref(self, part: Any) -> tuple[Any, list[str]]:
        used: list[str] = []
        while isinstance(part, dict) and isinstance(part.get("$ref"), str) and len(used) < MAX_REF_HOPS:
            used.append(part["$ref"])
            part = merge(self._resolve(part["$ref"]), _without(part, "$ref"))
        return part, used

    def _resolve(self, ref: str) -> Any:
        """A local $ref's target; anything else (remote, an anchor, a bad pointer) allows anything."""
        if not ref.startswith("#"):
            return True
        pointer = urllib.parse.unquote(ref[1:])
        if pointer and not pointer.startswith("/"):
            return True
        node = self.root
        for token in pointer.split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return True
        return node

    def _choice(self, schema: dict[str, Any], key: str, name: str, variant: int, minimal: bool) -> Any:
        """The first branch of ``anyOf``/``oneOf`` that works: non-null ones first, or when
        minimal null, then branches without a $ref. A ``oneOf`` value must match one branch only."""
        branches: list[Any] = schema[key]
        rest = _without(schema, key)
        order = sorted(range(len(branches)), key=lambda i: _rank(branches[i], minimal))
        start = self.facts.cursor
        value: Any = None
        for i in order:
            self.facts.cursor = start
            value = self.value({"allOf": [rest, branches[i]]}, name, variant, minimal)
            if key == "anyOf" or sum(self._holds(b, value) for b in branches) == 1:
                return value
        return value

    def _holds(self, schema: object, value: Any) -> bool:
        if self._checker is None:
            self._checker = _validator(self.root)
        return _holds(self._checker, schema, value)

    # -- values --

    def _enum(self, members: list[Any], schema: dict[str, Any], variant: int) -> Any:
        """A member the prompt mentions, else the first; the item ``variant`` of an array takes
        the next member in that order."""
        types = _type_list(schema.get("type"))
        fitting = [m for m in members if not types or any(_is_type(m, t) for t in types)] or members
        mentioned = [m for m in fitting if self._mentioned(m)]
        ordered = mentioned + [m for m in fitting if m not in mentioned]
        return ordered[variant % len(ordered)]

    def _mentioned(self, member: Any) -> bool:
        if isinstance(member, str) and member.strip():
            pattern = rf"(?<![\w-]){re.escape(member.strip())}(?![\w-])"
            return re.search(pattern, self.facts.searched, re.IGNORECASE) is not None
        if isinstance(member, (int, float)) and not isinstance(member, bool):
            return member in self.facts.numbers
        return False

    def _object(self, schema: dict[str, Any], variant: int, minimal: bool) -> dict[str, Any]:
        declared = schema.get("properties")
        props: dict[str, Any] = declared if isinstance(declared, dict) else {}
        required = [r for r in schema.get("required", []) if isinstance(r, str)]
        names = [n for n in props if not minimal or n in required]
        names += [r for r in required if r not in names]
        names = _with_dependencies(schema, names)
        limit = schema.get("maxProperties")
        if isinstance(limit, int) and len(names) > limit:
            names = ([n for n in names if n in required] + [n for n in names if n not in required])[:limit]
        out: dict[str, Any] = {}
        for key in names:
            sub = props[key] if key in props else _extra_schema(schema, key)
            if sub is not False or key in required:
                out[key] = self.value(sub, key, variant, minimal)
        self._extra_properties(schema, out, minimal)
        return out

    def _extra_properties(self, schema: dict[str, Any], out: dict[str, Any], minimal: bool) -> None:
        """Entries beyond the declared properties: for minProperties, and one for a map type
        (an object with only additionalProperties or patternProperties, e.g. dict[str, int])."""
        wanted = _int(schema.get("minProperties"), 0)
        is_map = not schema.get("properties") and (
            isinstance(schema.get("additionalProperties"), dict)
            or isinstance(schema.get("patternProperties"), dict)
        )
        if is_map and not minimal:
            wanted = max(wanted, 1)
        wanted = min(wanted, _int(schema.get("maxProperties"), MAX_ITEMS), MAX_ITEMS)
        for i in range(wanted + 8):
            if len(out) >= wanted:
                return
            key = self._key(schema, i)
            sub = _extra_schema(schema, key)
            if key not in out and sub is not False:
                out[key] = self.value(sub, key, i, minimal)

    def _key(self, schema: dict[str, Any], i: int) -> str:
        names = schema.get("propertyNames")
        if isinstance(names, dict):
            key = self.value(merge({"type": "string"}, names), "key", i, False)
            if isinstance(key, str):
                return key
        patterns = _dict(schema.get("patternProperties"))
        key = f"key{i + 1}"
        if patterns and not any(_search(pattern, key) for pattern in patterns):
            key = pattern_sample.sample(next(iter(patterns))) or key  # a key the first pattern types
        return key

    def _array(self, schema: dict[str, Any], name: str, minimal: bool) -> list[Any]:
        items = schema.get("items")
        prefix: list[Any] = schema.get("prefixItems") or []
        rest: Any = True if items is None else items
        if isinstance(items, list):  # draft 7 and before: a tuple
            prefix, rest = items, schema.get("additionalItems", True)
        low = _int(schema.get("minItems"), 0)
        high = _int(schema.get("maxItems"), MAX_ITEMS)
        if rest is False:
            high = min(high, len(prefix))
        count = low if minimal else max(low, len(prefix) or DEFAULT_ITEMS)
        count = min(count, high, MAX_ITEMS)
        contains = schema.get("contains")
        must_contain = _int(schema.get("minContains"), 1) if contains is not None else 0
        unique = schema.get("uniqueItems") is True
        out: list[Any] = []
        seen: set[bytes] = set()
        for attempt in range(count + 16):
            if len(out) >= count:
                break
            at = len(out)
            sub = prefix[at] if at < len(prefix) else rest
            if at < must_contain:
                sub = {"allOf": [sub, contains]}
            value = self.value(sub, _singular(name), attempt, minimal)
            key = _canonical(value)
            if not unique or key not in seen:
                seen.add(key)
                out.append(value)
        return out

    def _number(self, schema: dict[str, Any], integer: bool, variant: int) -> int | float:
        bounds = _Bounds(schema, integer)
        found = self.facts.take_number(bounds.fits)
        return _plain(found) if found is not None else bounds.default(variant)

    def _string(self, schema: dict[str, Any], name: str, variant: int) -> str:
        fmt = schema.get("format")
        text = self._formatted(fmt, variant) if isinstance(fmt, str) else None
        if text is None:
            text = self._text(name, variant)
        low = min(_int(schema.get("minLength"), 0), MAX_STRING)
        high = _int(schema.get("maxLength"), MAX_STRING)
        text = _fit_length(text, low, high)
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not _search(pattern, text):
            text = pattern_sample.sample(pattern, low, high) or text
        return text

    def _text(self, name: str, variant: int) -> str:
        candidates = list(dict.fromkeys(self._text_candidates(name))) or [" ".join(_words(name)) or "text"]
        n = len(candidates)
        return candidates[variant] if variant < n else f"{candidates[variant % n]} {variant // n + 1}"

    def _text_candidates(self, name: str) -> list[str]:
        facts, words = self.facts, set(_words(name))
        if words & _EXPRESSION:
            return facts.expressions + facts.clauses
        if words & _PLACE:
            return facts.places + facts.clauses
        if words & _NAME:
            return facts.propers + facts.clauses
        if words & _QUERY:
            return [facts.query, *facts.clauses] if facts.query else []
        return facts.clauses

    def _formatted(self, fmt: str, variant: int) -> str | None:
        """A plausible value of a string format (a date, an address, a URL the prompt holds first)."""
        facts = self.facts
        date = facts.dates[variant] if variant < len(facts.dates) else None
        if date is None:
            date = (DEFAULT_DATE + datetime.timedelta(days=variant)).isoformat()
        if fmt == "date":
            return date
        if fmt == "date-time":
            return f"{date}T09:00:00Z"
        if fmt == "time":
            return f"{9 + variant % 12:02d}:00:00Z"
        if fmt in ("email", "idn-email"):
            return _pick(facts.emails, variant) or (
                "user@example.com" if variant == 0 else f"user{variant + 1}@example.com"
            )
        if fmt in ("uri", "url", "iri", "uri-reference", "iri-reference"):
            return _pick(facts.urls, variant) or "https://example.com/" + (
                str(variant + 1) if variant else ""
            )
        if fmt == "uuid":
            digest = hashlib.sha256(msgspec.json.encode([facts.text, variant])).digest()
            return str(uuid.UUID(bytes=digest[:16], version=4))
        return _FIXED_FORMATS[fmt](variant) if fmt in _FIXED_FORMATS else None


_FIXED_FORMATS: dict[str, Callable[[int], str]] = {
    "hostname": lambda i: f"host{i + 1}.example.com" if i else "example.com",
    "idn-hostname": lambda i: f"host{i + 1}.example.com" if i else "example.com",
    "ipv4": lambda i: f"192.0.2.{1 + i % 254}",
    "ipv6": lambda i: f"2001:db8::{i + 1:x}",
    "duration": lambda i: f"P{i + 1}D",
    "json-pointer": lambda i: f"/{i}",
    "relative-json-pointer": lambda i: str(i),
    "regex": lambda i: ".*",
    "uri-template": lambda i: "https://example.com/{id}",
    "byte": lambda i: "aGVsbG8=",
}


# ---- numbers ---------------------------------------------------------------------------------


class _Bounds:
    """A number's constraints: bounds (draft 4's boolean exclusives too) and multipleOf."""

    def __init__(self, schema: dict[str, Any], integer: bool) -> None:
        self.integer = integer
        self.low, self.low_open = _bound(schema, "minimum", "exclusiveMinimum")
        self.high, self.high_open = _bound(schema, "maximum", "exclusiveMaximum")
        step = schema.get("multipleOf")
        self.step: int | float | None = step if _finite(step) and step > 0 else None

    def fits(self, x: int | float) -> bool:
        if self.integer and not float(x).is_integer():
            return False
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            return False
        if self.high is not None and (x > self.high or (self.high_open and x == self.high)):
            return False
        return self.step is None or _is_multiple(x, self.step)

    def default(self, variant: int) -> int | float:
        """Near 1 (or the lower bound, or the middle of both), the next one for each variant;
        the nearest value that fits."""
        low, high = self.low, self.high
        if low is not None and high is not None:
            base: float = low / 2 + high / 2
        elif low is not None:
            base = low + (1 if self.low_open else 0)
        elif high is not None:
            base = min(high - (1 if self.high_open else 0), 1)
        else:
            base = 1
        up = high is None or base + variant <= high
        target = base + variant if up else base - variant
        return _plain(self._nearest(target))

    def _nearest(self, target: float) -> float:
        unit = self.step if self.step is not None else 1
        if self.fits(target):
            return target
        try:
            center = round(target / unit)
        except (OverflowError, ValueError):
            return target
        for k in range(200):
            for candidate in (center + k, center - k):
                value = candidate * unit
                if self.fits(value):
                    return value
        if self.low is not None and self.high is not None and self.fits(self.low / 2 + self.high / 2):
            return self.low / 2 + self.high / 2
        return target


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str) -> tuple[float | None, bool]:
    """The tighter of a bound and its exclusive form: (value, open)."""
    given, opened = schema.get(inclusive), schema.get(exclusive)
    closed = given if _finite(given) else None
    if isinstance(opened, bool):  # draft 4: a flag on the inclusive bound
        return closed, opened and closed is not None
    if _finite(opened) and (closed is None or opened >= closed):
        return opened, True
    return closed, False


def _is_multiple(x: float, step: float) -> bool:
    # As jsonschema checks it: float division for a float step, remainder for an integer one.
    if isinstance(step, float):
        quotient = x / step
        return math.isfinite(quotient) and int(quotient) == quotient
    return x % step == 0


def _finite(x: object) -> TypeGuard[int | float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _plain(x: float) -> int | float:
    """Whole numbers as ints: ``12`` rather than ``12.0``."""
    return int(x) if isinstance(x, float) and x.is_integer() else x


# ---- helpers ---------------------------------------------------------------------------------


def merge(a: Any, b: Any) -> Any:
    """One schema for "both ``a`` and ``b``": bounds tightened, properties and required joined,
    types and enums intersected; where two subschemas meet, both (``allOf``)."""
    if not isinstance(a, (dict, bool)):
        a = True
    if not isinstance(b, (dict, bool)):
        b = True
    if a is False or b is False:
        return False
    if a is True or a == {}:
        return b
    if b is True or b == {}:
        return a
    out = dict(a)
    for key, value in b.items():
        out[key] = _merge_key(key, out[key], value) if key in out else value
    return out


def _merge_key(key: str, mine: Any, theirs: Any) -> Any:
    if key == "properties" and isinstance(mine, dict) and isinstance(theirs, dict):
        both = {k: {"allOf": [mine[k], v]} if k in mine else v for k, v in theirs.items()}
        return {**mine, **both}
    if key == "required" and isinstance(mine, list) and isinstance(theirs, list):
        return list(dict.fromkeys([*mine, *theirs]))
    if key == "allOf" and isinstance(mine, list) and isinstance(theirs, list):
        return [*mine, *theirs]
    if key == "type":
        return _common_types(_type_list(mine), _type_list(theirs)) or mine
    if key == "enum" and isinstance(mine, list) and isinstance(theirs, list):
        return [m for m in mine if m in theirs] or mine
    if (
        key in ("exclusiveMinimum", "exclusiveMaximum")
        and isinstance(mine, bool)
        and isinstance(theirs, bool)
    ):
        return mine or theirs
    if (key in _LOWER or key == "exclusiveMinimum") and _finite(mine) and _finite(theirs):
        return max(mine, theirs)
    if (key in _UPPER or key == "exclusiveMaximum") and _finite(mine) and _finite(theirs):
        return min(mine, theirs)
    if key in _SUBSCHEMAS:
        return {"allOf": [mine, theirs]}
    return mine


def _common_types(mine: list[str], theirs: list[str]) -> list[str]:
    common = [t for t in mine if t in theirs]
    numeric = {"integer", "number"}
    if "integer" not in common and numeric & {*mine} and numeric & {*theirs} and "integer" in mine + theirs:
        common.append("integer")  # an integer is a number
    return common


def _type_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []


def _kind(schema: dict[str, Any], minimal: bool) -> str:
    types = _type_list(schema.get("type"))
    if types:
        if minimal and "null" in types:
            return "null"
        return next((t for t in types if t != "null"), "null")
    return next((kind for kind, keys in _INFERRED if any(k in schema for k in keys)), "any")


def _is_type(value: Any, kind: str) -> bool:
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: _finite(v) and float(v).is_integer(),
        "number": _finite,
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    return checks.get(kind, lambda v: True)(value)


def _rank(branch: Any, minimal: bool) -> int:
    null = isinstance(branch, dict) and (
        branch.get("type") == "null"
        or ("const" in branch and branch["const"] is None)
        or branch.get("enum") == [None]
    )
    if not minimal:
        return 1 if null else 0
    if null:
        return 0
    return 2 if isinstance(branch, dict) and "$ref" in branch else 1


def _with_dependencies(schema: dict[str, Any], names: list[str]) -> list[str]:
    """``names`` plus what dependentRequired (or draft 7's array ``dependencies``) asks for."""
    rules = {**_dict(schema.get("dependencies")), **_dict(schema.get("dependentRequired"))}
    out = list(names)
    for name in out:  # grows while it is walked: dependencies of dependencies too
        needed = rules.get(name)
        if isinstance(needed, list):
            out += [n for n in needed if isinstance(n, str) and n not in out]
    return out


def _extra_schema(schema: dict[str, Any], key: str) -> Any:
    """The schema of an undeclared property ``key``: a matching patternProperties entry, else
    additionalProperties (anything when absent)."""
    for pattern, sub in _dict(schema.get("patternProperties")).items():
        if _search(pattern, key):
            return sub
    extra = schema.get("additionalProperties", True)
    if extra is True and schema.get("unevaluatedProperties") is False:
        return False
    return extra


def _fit_length(text: str, low: int, high: int) -> str:
    if len(text) < low:
        base = text or "x"
        text = " ".join([base] * (low // (len(base) + 1) + 1))
    if len(text) > high:
        text = text[:high]
        if len(text.rstrip()) >= low:
            text = text.rstrip()
    return text


def _words(name: str) -> list[str]:
    """A property name's words, lower case and singular: "cityNames" -> ["city", "name"]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [_singular(w) for w in re.split(r"[\W_]+", spaced.lower()) if w]


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _pick(items: list[str], i: int) -> str | None:
    return items[i] if i < len(items) else None


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _without(schema: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in keys}


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except (re.error, RecursionError, OverflowError):
        return True  # a pattern Python cannot read cannot be checked here


def _canonical(value: Any) -> bytes:
    return msgspec.json.encode(value, order="sorted")


def _validator(schema: Any) -> Any:
    try:
        return jsonschema.validators.validator_for(schema)(schema)
    except Exception:  # an odd schema: nothing to check against, never a crash
        return None


def _holds(validator: Any, schema: object, value: Any) -> bool:
    """Whether ``value`` is valid for ``schema`` (a part of the validator's root); True when it
    cannot be told."""
    if validator is None:
        return True
    try:
        return bool(validator.evolve(schema=schema).is_valid(value))
    except Exception:  # an odd schema makes the check inconclusive, never a crash
        return True
