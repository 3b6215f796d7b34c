"""JSON Schemas in requests, and structured output checked against them.

Pure. jsonschema resolves only ``$ref`` inside the schema (``$defs``, as Pydantic writes them):
from 4.18 on it retrieves nothing remote, so a schema cannot make the gateway fetch a URL, and a
``$ref`` it cannot resolve is a schema error, not a request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

import jsonschema
import msgspec
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from referencing.exceptions import Unresolvable

from protocol.messages import MAX_IMAGE_BYTES, MAX_IMAGE_URL, MAX_SCHEMA_BYTES

_json = msgspec.json.Encoder()
MAX_VERDICTS = 1024
_verdicts: dict[bytes, str | None] = {}
# An image inline: a data: URL of base64 bytes of one of the formats every provider takes.
DATA_URL = re.compile(r"\Adata:(image/(?:png|jpeg|gif|webp));base64,", re.IGNORECASE)
IMAGE_TYPES = "image/png, image/jpeg, image/gif or image/webp"


def schema_problem(schema: dict[str, Any]) -> str | None:
    """Why ``schema`` is not a usable JSON Schema (too large, or invalid), or None."""
    encoded = _json.encode(schema)
    if len(encoded) > MAX_SCHEMA_BYTES:
        return f"schema is {len(encoded)} bytes as JSON; the limit is {MAX_SCHEMA_BYTES}"
    # Checking against the metaschema takes ~0.4 ms, and a tool loop sends the same tools every
    # turn: the verdicts of recent schemas are kept by digest (a few bytes each).
    digest = hashlib.blake2b(encoded, digest_size=16).digest()
    if digest in _verdicts:
        return _verdicts[digest]
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
        verdict = None
    except SchemaError as exc:
        verdict = f"not a valid JSON Schema: {exc.message}"
    if len(_verdicts) >= MAX_VERDICTS:
        del _verdicts[next(iter(_verdicts))]  # the oldest
    _verdicts[digest] = verdict
    return verdict


def image_problem(url: str) -> str | None:
    """Why an image part's ``url`` is refused, or None: an https URL, or base64 bytes inline."""
    if url.startswith("https://"):
        return None if len(url) <= MAX_IMAGE_URL else f"an image URL is limited to {MAX_IMAGE_URL} characters"
    match = DATA_URL.match(url)
    if match is None:
        return f"an image is an https: URL or a data: URL of base64 {IMAGE_TYPES} bytes"
    data = url[match.end() :]
    if len(data) * 3 // 4 > MAX_IMAGE_BYTES + 2:
        return f"an image is limited to {MAX_IMAGE_BYTES} bytes"
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return "an image data: URL holds invalid base64"
    return None


def split_data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a data: URL image; None for an https URL."""
    match = DATA_URL.match(url)
    if match is None:
        return None
    return match.group(1).lower(), url[match.end() :]


def parse_object(text: str, schema: dict[str, Any] | None) -> tuple[Any, str | None]:
    """The final text of a json/json_schema stream as (value, None), or (None, why not): not
    JSON, or not valid against ``schema``."""
    try:
        value = msgspec.json.decode(text.strip() or b"")
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        return None, f"the output is not valid JSON: {exc}"
    if schema is None:
        return value, None
    try:
        validator = jsonschema.validators.validator_for(schema)(schema)
        first = best_match(validator.iter_errors(value))
    except (SchemaError, Unresolvable) as exc:
        return None, f"the schema could not be applied: {exc}"
    if first is not None:
        return None, f"the output does not match the schema at {_path(first)}: {first.message}"
    return value, None


def _path(error: ValidationError) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
