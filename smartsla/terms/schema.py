"""terms.schema.json (JSON Schema draft 2020-12) and its errors turned into messages that name the key and the fix."""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema


@lru_cache(maxsize=1)
def schema() -> dict:
    """The JSON Schema of terms files (draft 2020-12)."""
    text = resources.files(__package__).joinpath("terms.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def validator() -> jsonschema.Draft202012Validator:
    # JSON Schema counts 12.0 as an integer; a float here would later reach
    # the ABI encoder or the maths, so integers must really be ints.
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    strict = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)
    return strict(schema())


_TYPE_NAMES = {
    "string": "text",
    "integer": "a whole number",
    "object": "a mapping of keys",
    "array": "a list",
    "number": "a number",
    "boolean": "true or false",
}


def describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def schema_error(err: jsonschema.ValidationError) -> tuple[tuple, str]:
    """Turn a jsonschema error into (key path, readable message)."""
    parts = tuple(err.absolute_path)
    sch = err.schema if isinstance(err.schema, dict) else {}
    expected = sch.get("x-expected")
    kind = err.validator
    if kind == "additionalProperties":
        allowed = list(sch.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        key = extra[0]
        hint = difflib.get_close_matches(key, allowed, n=1)
        did_you_mean = f'did you mean "{hint[0]}"? ' if hint else ""
        return parts + (key,), f"unknown key; {did_you_mean}allowed keys here: {', '.join(allowed)}"
    if kind == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        key = missing[0]
        sub = sch.get("properties", {}).get(key, {})
        sub_expected = resolve_ref(sub).get("x-expected")
        hint = f" ({sub_expected})" if sub_expected else ""
        return parts + (key,), f"missing required key{hint}"
    if kind == "type":
        types = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        if expected:
            want = expected
        else:
            want = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
        extra = ""
        if isinstance(err.instance, float):
            extra = " (quote it so it stays exact)"
        elif isinstance(err.instance, (int, float)) and not isinstance(err.instance, bool) and "string" in types:
            extra = " (quote it)"
        return parts, f"expected {want}, got {describe(err.instance)}{extra}"
    if kind == "enum":
        allowed = " | ".join(str(v) for v in err.validator_value)
        return parts, f"{describe(err.instance)} is not allowed; use one of: {allowed}"
    if kind == "pattern":
        return parts, f"{describe(err.instance)} is not valid: expected {expected or 'text matching ' + err.validator_value}"
    if kind == "minimum":
        return parts, f"must be at least {err.validator_value}, got {describe(err.instance)}"
    if kind == "maximum":
        return parts, f"must be at most {err.validator_value}, got {describe(err.instance)}"
    if kind == "minItems":
        return parts, f"needs at least {err.validator_value} entr{'y' if err.validator_value == 1 else 'ies'}"
    if kind == "maxItems":
        return parts, f"has {len(err.instance)} entries; at most {err.validator_value} are allowed"
    if kind == "minLength":
        return parts, f"must not be empty{': expected ' + expected if expected else ''}"
    return parts, err.message


def resolve_ref(sub: dict) -> dict:
    ref = sub.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return schema()["$defs"][ref[len("#/$defs/"):]]
    return sub


def error_order(err: jsonschema.ValidationError, marks: dict) -> tuple:
    # Report the problem that comes first in the file, so fixing errors top to
    # bottom converges; unknown positions sort last.
    parts = tuple(err.absolute_path)
    while parts and parts not in marks:
        parts = parts[:-1]
    line, column = marks.get(parts, (10**9, 0))
    return (line, column, -len(err.absolute_path), str(err.validator))
