"""Entity ids, value encoding and comparison rules."""

from __future__ import annotations

import math

import pytest

from qops.provenance.errors import InvalidEntityIdError
from qops.provenance.ids import activity_id, entity_id, parse_entity_id
from qops.provenance.models import Measured
from qops.provenance.outbox import decode_record, encode_record
from qops.provenance.service import delta_of, values_equal
from qops.provenance.values import decode_value, encode_value, value_type_of
from tests.integration.provenance.records import make_record


def test_entity_id_round_trips_through_parse() -> None:
    value = entity_id("qubit_frequency", "Q0-Q1", "exec_001", "task_9")
    assert value == "qubit_frequency:Q0-Q1:exec_001:task_9"
    assert parse_entity_id(value) == ("qubit_frequency", "Q0-Q1", "exec_001", "task_9")
    assert activity_id("exec_001", "task_9") == "exec_001:task_9"


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (("f", "", "e", "t"), "qid is empty"),
        (("f", "Q0", "e:x", "t"), "contains ':'"),
    ],
)
def test_entity_id_bad_part_raises(parts: tuple[str, str, str, str], message: str) -> None:
    with pytest.raises(InvalidEntityIdError, match=message):
        entity_id(*parts)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 0.0, -1.5e-300, 7, "NaN"])
def test_value_encoding_round_trips(value: float | int | str) -> None:
    value_type = value_type_of(value)
    stored = encode_value(value)
    assert not (isinstance(stored, float) and not math.isfinite(stored))
    back = decode_value(stored, value_type)
    assert type(back) is type(value)
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(back)  # type: ignore[arg-type]
    else:
        assert back == value


def test_value_type_refuses_bool() -> None:
    with pytest.raises(TypeError, match="bool"):
        value_type_of(True)


def test_values_equal_and_delta_rules() -> None:
    assert values_equal(1.0, 1.0 + 1e-12, 1e-9)
    assert not values_equal(1.0, 1.0 + 1e-6, 1e-9)
    assert values_equal(math.nan, math.nan, 1e-9)
    assert not values_equal(math.nan, 1.0, 1e-9)
    assert not values_equal("a", "b", 1e-9)
    assert not values_equal(1, "1", 1e-9)
    assert delta_of(0.0, 1.0) == (1.0, None)
    assert delta_of(-2.0, -1.0) == (1.0, 50.0)
    assert delta_of("a", 1.0) == (None, None)


def test_outbox_encoding_keeps_non_finite_floats_and_strings() -> None:
    record = make_record(
        "e", "t", {"a": Measured(value=math.nan, error=-math.inf), "b": "NaN", "c": 3}
    )
    back = decode_record(encode_record(record))
    assert math.isnan(back.outputs["a"].value)  # type: ignore[arg-type]
    assert back.outputs["a"].error == -math.inf
    assert back.outputs["b"].value == "NaN"
    assert back.outputs["c"].value == 3
    assert back.started_at == record.started_at
