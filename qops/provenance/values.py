"""Parameter values as recorded, as stored in MongoDB and as sent as JSON.

A value is a float, an int or a str, kept exactly as recorded, NaN and ±inf included.
MongoDB can hold non-finite doubles, but the embedded server refuses them, so qops stores
every non-finite float as one of the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
next to ``value_type: "float"`` (see ``docs/mongodb.md``). JSON has no NaN either: the API
sends the same strings, again with ``value_type`` saying it is a float.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import PlainSerializer, StrictFloat, StrictInt, StrictStr

ValueType = Literal["float", "int", "str"]

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
"""The range of an ``int`` value: MongoDB stores integers in 64 bits."""

MAX_TEXT_BYTES = 1024 * 1024
"""Most UTF-8 bytes of a ``str`` value or a unit (a version document stays far below the
16 MiB a MongoDB document may hold)."""


def value_problem(value: object) -> str | None:
    """Why ``value`` cannot be stored as a parameter value, or ``None`` if it can."""
    if isinstance(value, bool):
        return "a bool is not a parameter value (use 0/1 or a str)"
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        return f"the int {value} is outside the 64-bit range [-2**63, 2**63 - 1]"
    if isinstance(value, str) and len(value.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        return f"the str is longer than {MAX_TEXT_BYTES} UTF-8 bytes"
    return None


def non_finite_text(value: float) -> str | None:
    """Return the stored text of a non-finite float, ``None`` for a finite one."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return None


def json_safe(value: float | int | str | None) -> float | int | str | None:
    """Return ``value`` with non-finite floats replaced by their text."""
    if isinstance(value, float):
        text = non_finite_text(value)
        return value if text is None else text
    return value


def value_type_of(value: float | int | str) -> ValueType:
    """Return the recorded type name of a value (``bool`` is not a parameter value)."""
    if isinstance(value, bool):
        raise TypeError("bool is not a parameter value type")
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


def encode_value(value: float | int | str) -> float | int | str:
    """Return the stored form of a value: non-finite floats become their text."""
    stored = json_safe(value)
    assert stored is not None
    return stored


def decode_value(stored: object, value_type: ValueType) -> float | int | str:
    """Return the recorded value from its stored form and ``value_type``."""
    if value_type == "float":
        if isinstance(stored, str):
            return _NON_FINITE[stored]
        assert isinstance(stored, int | float)
        return float(stored)
    if value_type == "int":
        assert isinstance(stored, int)
        return int(stored)
    return str(stored)


def decode_optional_float(stored: object) -> float | None:
    """Return an optional float (an error bar) from its stored form."""
    if stored is None:
        return None
    if isinstance(stored, str):
        return _NON_FINITE[stored]
    assert isinstance(stored, int | float)
    return float(stored)


def numeric(value: float | int | str) -> float | None:
    """Return ``value`` as a float if it is a number, else ``None``."""
    if isinstance(value, bool | str):
        return None
    return float(value)


def _serialize_value(value: float | int | str) -> float | int | str:
    return encode_value(value)


def _serialize_optional(value: float | None) -> float | str | None:
    if value is None:
        return None
    text = non_finite_text(value)
    return value if text is None else text


ParameterValue = Annotated[
    StrictInt | StrictFloat | StrictStr,
    PlainSerializer(_serialize_value, when_used="json"),
]
"""A parameter value: int, float (NaN and ±inf allowed) or str; JSON-safe when dumped."""

OptionalFloat = Annotated[
    float | None,
    PlainSerializer(_serialize_optional, when_used="json"),
]
"""An optional float (error, delta) that dumps NaN and ±inf as text in JSON."""
