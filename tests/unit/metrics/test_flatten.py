"""Flattening get_dynamic payloads into Prometheus samples, exactly as the protocol's examples."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from qops.metrics.collector import RESERVED, HardwareMetricsCollector
from qops.metrics.flatten import flatten_dynamic


def exposition(payload: dict[str, object]) -> set[str]:
    """The sample lines of ``qi_*`` metrics that Prometheus would scrape for ``payload``."""
    collector = HardwareMetricsCollector()
    collector.replace_metrics(flatten_dynamic(payload, reserved=RESERVED))
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        line
        for line in text.splitlines()
        if line.startswith("qi_") and not line.startswith(("qi_up", "qi_backend_state"))
    }


def test_flatten_number_example_gives_one_unlabelled_sample() -> None:
    assert exposition({"fridge_temperature_in_mk": 8.4}) == {"qi_fridge_temperature_in_mk 8.4"}


def test_flatten_one_label_example_gives_sample_per_qubit() -> None:
    payload = {"t1": {"__labels__": ["qubit"], "q0": 0.995, "q1": 0.988}}
    assert exposition(payload) == {'qi_t1{qubit="q0"} 0.995', 'qi_t1{qubit="q1"} 0.988'}


def test_flatten_two_label_example_maps_keys_by_depth() -> None:
    payload = {"cnot_fidelity": {"__labels__": ["qubit1", "qubit2"], "q1": {"q0": 0.995}}}
    assert exposition(payload) == {'qi_cnot_fidelity{qubit1="q1",qubit2="q0"} 0.995'}


def test_flatten_null_leaf_and_omitted_branch_give_no_sample() -> None:
    payload = {"t2": {"__labels__": ["qubit"], "q0": None, "q1": 12.5}, "rate": None}
    assert exposition(payload) == {'qi_t2{qubit="q1"} 12.5'}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"__labels__": ["qubit"], "q0": {"x": 1.0}}, "object at depth 1"),
        ({"__labels__": ["qubit1", "qubit2"], "q0": 1.0}, "value at depth 1"),
        ({"__labels__": ["qubit"], "q0": "high"}, "not a number"),
        ({"__labels__": ["qubit"], "q0": True}, "not a number"),
        ({"__labels__": ["qu-bit"], "q0": 1.0}, "not a valid Prometheus label name"),
        ({"__labels__": ["qubit", "qubit"], "q0": {"q1": 1.0}}, "names a label twice"),
        ({"__labels__": [], "q0": 1.0}, "non-empty list"),
        ([1, 2], "not a number"),
    ],
)
def test_flatten_bad_metric_is_dropped_with_reason_and_others_kept(
    bad: object, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    payload = {"bad": bad, "t1": {"__labels__": ["qubit"], "q0": 0.9}}
    with caplog.at_level(logging.WARNING, logger="qops.metrics.flatten"):
        flattened = flatten_dynamic(payload)
    assert [m.name for m in flattened.metrics] == ["qi_t1"]
    assert len(flattened.dropped) == 1
    assert flattened.dropped[0].source_name == "bad"
    assert reason in flattened.dropped[0].reason
    assert reason in caplog.text


def test_flatten_names_are_sanitized_with_prefix() -> None:
    flattened = flatten_dynamic({"fridge.temp-mK": 8.0, "2q gate": 1.0})
    assert [m.name for m in flattened.metrics] == ["qi_fridge_temp_mK", "qi_2q_gate"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"": 1.0}, "no letter or digit"),
        ({"---": 1.0}, "no letter or digit"),
        ({"up": 1.0}, "reserved"),
        ({"a.b": 1.0, "a-b": 2.0}, "already the name"),
    ],
)
def test_flatten_invalid_or_clashing_name_is_dropped(
    payload: dict[str, object], reason: str
) -> None:
    flattened = flatten_dynamic(payload, reserved=RESERVED)
    assert reason in flattened.dropped[-1].reason


def test_collector_replace_removes_vanished_series() -> None:
    collector = HardwareMetricsCollector()
    collector.replace_metrics(
        flatten_dynamic({"t1": {"__labels__": ["qubit"], "q0": 1.0, "q1": 2.0}, "temp": 8.0})
    )
    collector.replace_metrics(flatten_dynamic({"t1": {"__labels__": ["qubit"], "q1": 3.0}}))
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert 'qi_t1{qubit="q1"} 3.0' in text
    assert 'qubit="q0"' not in text
    assert "qi_temp" not in text


def test_collector_state_gauge_marks_only_current_state() -> None:
    collector = HardwareMetricsCollector()
    collector.set_reachability(False, "UNREACHABLE")
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert "qi_up 0.0" in text
    assert 'qi_backend_state{state="UNREACHABLE"} 1.0' in text
    assert 'qi_backend_state{state="IDLE"} 0.0' in text


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("cold", "str 'cold', not a number"),
        (True, "bool True, not a number"),
        ([1.0, 2.0], "list [1.0, 2.0], not a number"),
        (float("nan"), "nan, not a finite number"),
        (float("inf"), "inf, not a finite number"),
        (10**400, "integer too large for a float"),
    ],
)
def test_flatten_non_numeric_top_level_metric_is_dropped_alone(
    value: object, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    payload = {"fridge": value, "t1": {"__labels__": ["qubit"], "q0": 0.5}, "count": 2**70}
    with caplog.at_level(logging.WARNING, logger="qops.metrics.flatten"):
        flattened = flatten_dynamic(payload, reserved=RESERVED)
    assert [d.source_name for d in flattened.dropped] == ["fridge"]
    assert reason in flattened.dropped[0].reason
    assert any("fridge" in r.getMessage() and reason in r.getMessage() for r in caplog.records)
    assert exposition(payload) == {'qi_t1{qubit="q0"} 0.5', "qi_count 1.1805916207174113e+21"}


def test_flatten_nan_leaf_drops_its_metric_only() -> None:
    payload = {"t1": {"__labels__": ["qubit"], "q0": float("nan")}, "t2": 3.0}
    assert exposition(payload) == {"qi_t2 3.0"}


def test_flatten_label_value_with_lone_surrogate_is_dropped_and_scrape_works() -> None:
    # Python's json reads "\ud800" into a str that no UTF-8 scrape can carry.
    payload = {"t1": {"__labels__": ["qubit"], "q\ud800": 1.0, "q1": 2.0}, "t2": 3.0}
    flattened = flatten_dynamic(payload, reserved=RESERVED)
    assert [d.source_name for d in flattened.dropped] == ["t1"]
    assert "not valid UTF-8" in flattened.dropped[0].reason
    assert exposition(payload) == {"qi_t2 3.0"}


def test_flatten_label_name_with_lone_surrogate_is_dropped() -> None:
    flattened = flatten_dynamic({"t1": {"__labels__": ["q\ud800"], "a": 1.0}})
    assert [d.source_name for d in flattened.dropped] == ["t1"]
