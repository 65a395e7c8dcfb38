"""Compiling the protocol's JSON Schemas into plain Python predicates.

``jsonschema`` walks a schema generically for each message, which costs more than parsing
the message itself. The protocol's schemas use a small set of keywords; this module turns a
schema that uses only those into nested closures that answer "valid or not" several times
faster. A schema with any other keyword is not compiled (the caller keeps using
``jsonschema``), and ``jsonschema`` still produces the error message when a message is
invalid, so the schema files stay the single definition of what is valid.

Supported (draft 2020-12 semantics): ``type``, ``const``, ``enum``, ``required``,
``properties``, ``additionalProperties``, ``items``, ``prefixItems``, ``minItems``,
``maxItems``, ``minimum``, ``minLength``, ``pattern``, ``allOf``, ``anyOf``; annotations
(``title``, ``description``, ``default``, ``$schema``, ``$id``, ``$defs``) are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

Predicate = Callable[[object], bool]
"""Whether a decoded JSON value is valid."""

_ANNOTATIONS = frozenset({"title", "description", "default", "$schema", "$id", "$defs"})


class _UnsupportedError(Exception):
    """The schema uses a keyword this compiler does not implement."""


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_PLAIN: dict[str, type] = {
    "object": dict,
    "array": list,
    "string": str,
    "null": type(None),
}

_TYPES: dict[str, Predicate] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": _is_integer,
}


def _json_equal(a: object, b: object) -> bool:
    """Equality as JSON Schema defines it: booleans never equal numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return a == b


def compile_schema(schema: object) -> Predicate | None:
    """Return a predicate equivalent to ``schema``, or ``None`` if it uses other keywords.

    ``schema`` must have its ``$ref``s inlined already.
    """
    try:
        return _compile(schema)
    except _UnsupportedError:
        return None


def _compile(schema: object) -> Predicate:
    if schema is True or schema is False:
        constant = bool(schema)
        return lambda value: constant
    if not isinstance(schema, Mapping):
        raise _UnsupportedError(repr(schema))
    if "patternProperties" in schema:
        raise _UnsupportedError("patternProperties")
    checks: list[Predicate] = []
    for keyword, argument in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        build = _KEYWORDS.get(keyword)
        if build is None:
            raise _UnsupportedError(keyword)
        checks.append(build(argument, schema))
    if len(checks) == 1:
        return checks[0]
    return _conjunction(tuple(checks))


def _conjunction(parts: tuple[Predicate, ...]) -> Predicate:
    # Plain loops: generator expressions inside all()/any() cost more than the checks.
    def every(value: object) -> bool:
        for part in parts:  # noqa: SIM110
            if not part(value):
                return False
        return True

    return every


Builder = Callable[[object, Mapping[str, object]], Predicate]


def _type(argument: object, schema: Mapping[str, object]) -> Predicate:
    names = {str(n) for n in ([argument] if isinstance(argument, str) else _as_list(argument))}
    if not names <= _TYPES.keys():
        raise _UnsupportedError(f"type {sorted(names)}")
    plain = tuple(_PLAIN[name] for name in names if name in _PLAIN)
    if "number" in names:
        numeric: tuple[type, ...] = (int, float)
    elif "integer" in names:
        numeric = (int,)
    else:
        numeric = ()
    accepted = plain + numeric
    integral_floats = "integer" in names and "number" not in names
    allows_bool = "boolean" in names

    def check(value: object) -> bool:
        if isinstance(value, bool):
            return allows_bool
        if isinstance(value, accepted):
            return True
        return integral_floats and isinstance(value, float) and value.is_integer()

    return check


def _const(argument: object, schema: Mapping[str, object]) -> Predicate:
    def check(value: object) -> bool:
        return _json_equal(value, argument)

    return check


def _enum(argument: object, schema: Mapping[str, object]) -> Predicate:
    options = tuple(_as_list(argument))

    def check(value: object) -> bool:
        return any(_json_equal(value, option) for option in options)

    return check


def _required(argument: object, schema: Mapping[str, object]) -> Predicate:
    names = tuple(str(name) for name in _as_list(argument))

    def check(value: object) -> bool:
        if isinstance(value, dict):
            for name in names:
                if name not in value:
                    return False
        return True

    return check


def _properties(argument: object, schema: Mapping[str, object]) -> Predicate:
    props = {str(key): _compile(sub) for key, sub in _as_dict(argument).items()}

    items = tuple(props.items())

    def check(value: object) -> bool:
        if isinstance(value, dict):
            for key, test in items:
                if key in value and not test(value[key]):
                    return False
        return True

    return check


def _additional_properties(argument: object, schema: Mapping[str, object]) -> Predicate:
    known = frozenset(_as_dict(schema.get("properties", {})))
    extra = _compile(argument)

    def check(value: object) -> bool:
        if isinstance(value, dict):
            for key, item in value.items():
                if key not in known and not extra(item):
                    return False
        return True

    return check


def _prefix_items(argument: object, schema: Mapping[str, object]) -> Predicate:
    prefix = tuple(_compile(sub) for sub in _as_list(argument))

    def check(value: object) -> bool:
        if not isinstance(value, list):
            return True
        return all(test(item) for test, item in zip(prefix, value, strict=False))

    return check


def _items(argument: object, schema: Mapping[str, object]) -> Predicate:
    start = len(_as_list(schema.get("prefixItems", [])))
    each = _compile(argument)

    def check(value: object) -> bool:
        if isinstance(value, list):
            for item in value[start:] if start else value:
                if not each(item):
                    return False
        return True

    return check


def _bound(
    applies: Callable[[object], bool], measure: Callable[[object], float], minimum: bool
) -> Builder:
    def build(argument: object, schema: Mapping[str, object]) -> Predicate:
        limit = float(argument)  # type: ignore[arg-type]

        def check(value: object) -> bool:
            if not applies(value):
                return True
            return measure(value) >= limit if minimum else measure(value) <= limit

        return check

    return build


def _pattern(argument: object, schema: Mapping[str, object]) -> Predicate:
    search = re.compile(str(argument)).search

    def check(value: object) -> bool:
        return not isinstance(value, str) or search(value) is not None

    return check


def _all_of(argument: object, schema: Mapping[str, object]) -> Predicate:
    return _conjunction(tuple(_compile(sub) for sub in _as_list(argument)))


def _any_of(argument: object, schema: Mapping[str, object]) -> Predicate:
    parts = tuple(_compile(sub) for sub in _as_list(argument))

    def check(value: object) -> bool:
        return any(part(value) for part in parts)

    return check


def _as_list(argument: object) -> list[object]:
    if not isinstance(argument, list):
        raise _UnsupportedError(repr(argument))
    return argument


def _as_dict(argument: object) -> dict[str, object]:
    if not isinstance(argument, dict):
        raise _UnsupportedError(repr(argument))
    return argument


def _length(value: object) -> float:
    return float(len(value))  # type: ignore[arg-type]


def _number_value(value: object) -> float:
    return float(value)  # type: ignore[arg-type]


_KEYWORDS: dict[str, Builder] = {
    "type": _type,
    "const": _const,
    "enum": _enum,
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional_properties,
    "prefixItems": _prefix_items,
    "items": _items,
    "minItems": _bound(lambda v: isinstance(v, list), _length, minimum=True),
    "maxItems": _bound(lambda v: isinstance(v, list), _length, minimum=False),
    "minLength": _bound(lambda v: isinstance(v, str), _length, minimum=True),
    "minimum": _bound(_is_number, _number_value, minimum=True),
    "pattern": _pattern,
    "allOf": _all_of,
    "anyOf": _any_of,
}
