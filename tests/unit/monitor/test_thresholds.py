"""Threshold crossings of get_dynamic values, once per crossing."""

from __future__ import annotations

import math

from qops.metrics.flatten import flatten_dynamic
from qops.monitor.thresholds import MetricThreshold, OutOfSpec, ThresholdWatcher

THRESHOLDS = [
    MetricThreshold(metric="t1", minimum=20e-6),
    MetricThreshold(metric="cz_fidelity", minimum=0.95, maximum=1.0),
]


def _payload(t1_q1: float, cz: float = 0.97) -> dict[str, object]:
    return {
        "t1": {"__labels__": ["qubit"], "q0": 50e-6, "q1": t1_q1},
        "cz_fidelity": {"__labels__": ["qubit1", "qubit2"], "q0": {"q1": cz}},
        "fridge_temperature_in_mk": 8.4,
    }


def test_watcher_reports_a_crossing_once_until_back_in_spec() -> None:
    seen: list[OutOfSpec] = []
    watcher = ThresholdWatcher("chip-a", THRESHOLDS, seen.append)
    assert watcher.observe(flatten_dynamic(_payload(40e-6))) == []
    crossed = watcher.observe(flatten_dynamic(_payload(10e-6)))
    assert [(c.metric, c.qids, c.value) for c in crossed] == [("t1", ["Q1"], 10e-6)]
    assert crossed[0].labels == {"qubit": "q1"}
    assert crossed[0].chip_id == "chip-a"
    assert watcher.observe(flatten_dynamic(_payload(9e-6))) == []  # still out: no repeat
    watcher.observe(flatten_dynamic(_payload(40e-6)))
    assert len(watcher.observe(flatten_dynamic(_payload(10e-6)))) == 1  # crossed again
    assert len(seen) == 2


def test_watcher_pair_metric_names_both_qubits_and_ignores_unbounded() -> None:
    seen: list[OutOfSpec] = []
    watcher = ThresholdWatcher("chip-a", THRESHOLDS, seen.append)
    watcher.observe(flatten_dynamic(_payload(40e-6, cz=0.90)))
    assert [(c.metric, c.qids) for c in seen] == [("cz_fidelity", ["Q0", "Q1"])]


def test_threshold_non_finite_value_is_out_of_spec() -> None:
    assert MetricThreshold(metric="t1", minimum=0.0).violated_by(math.nan)
    assert not MetricThreshold(metric="t1").violated_by(1.0)
