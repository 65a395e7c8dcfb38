"""Chip health over real recorded provenance on the embedded MongoDB."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import pytest

from qops.calibration.graph import CALIBRATION_STEPS, StepName
from qops.maintenance.errors import ChipNotFoundError, InvalidTargetError
from qops.maintenance.health import ChipHealth, Finding, HealthService
from qops.maintenance.policy import load_policy
from qops.provenance.models import Measured
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from qops.timeutil import utc_now
from tests.integration.provenance.records import CHIP, PROJECT, make_record

HEALTHY_QUBIT: Mapping[str, float] = {
    "qubit_frequency": 5.1e9,
    "readout_frequency": 6.9e9,
    "pi_amplitude": 0.4,
    "t1": 60e-6,
    "t2_star": 15e-6,
    "t2_echo": 70e-6,
    "readout_fidelity": 0.95,
}


@pytest.fixture
def health(repository: MongoProvenanceRepository) -> HealthService:
    return HealthService(ProvenanceService(repository, PROJECT), load_policy())


def calibrate(
    repository: MongoProvenanceRepository,
    execution_id: str,
    qid: str = "Q0",
    chip_id: str = CHIP,
    **values: float,
) -> None:
    """Record every qubit step's outputs for ``qid`` (``values`` override the healthy ones)."""
    outputs = {**HEALTHY_QUBIT, **values}
    for spec in CALIBRATION_STEPS.values():
        if spec.name is StepName.CHECK_CZ:
            continue
        own = {n: Measured(value=outputs[n]) for n in spec.outputs if n != "qubit_frequency"}
        if spec.name is StepName.CHECK_FREQUENCY:
            own["qubit_frequency"] = Measured(value=outputs["qubit_frequency"], unit="Hz")
        repository.record(
            make_record(
                execution_id,
                f"{spec.name}-{qid}",
                own,
                qid=qid,
                chip_id=chip_id,
                task_name=str(spec.name),
            )
        )


def calibrate_pair(
    repository: MongoProvenanceRepository, execution_id: str, pair: str, fidelity: float
) -> None:
    repository.record(
        make_record(
            execution_id, f"cz-{pair}", {"cz_fidelity": fidelity}, qid=pair, task_name="CheckCZ"
        )
    )


def steps_of(report: ChipHealth) -> list[tuple[str, str]]:
    return [(str(r.step), r.target) for r in report.recommendations]


def test_chip_health_fresh_calibration_is_healthy(
    repository: MongoProvenanceRepository, health: HealthService
) -> None:
    calibrate(repository, "e1", "Q0")
    calibrate(repository, "e1", "Q1")
    calibrate_pair(repository, "e1", "Q0-Q1", 0.98)

    report = health.chip_health(CHIP)

    assert report.healthy, report.recommendations
    assert {(p.parameter_name, p.qid) for p in report.parameters} >= {
        ("t1", "Q0"),
        ("cz_fidelity", "Q0-Q1"),
    }
    assert all(p.age_hours is not None and p.age_hours < 1 for p in report.parameters)


def test_chip_health_stale_frequency_recommends_it_and_every_step_after_it(
    repository: MongoProvenanceRepository, health: HealthService
) -> None:
    calibrate(repository, "e1", "Q0")
    calibrate(repository, "e1", "Q1")
    calibrate_pair(repository, "e1", "Q0-Q1", 0.98)

    # 30 h later: the 24 h parameters are stale, the 48 h ones are not.
    report = health.chip_health(CHIP, now=utc_now() + timedelta(hours=30))

    stale = {(p.parameter_name, p.qid) for p in report.parameters if Finding.STALE in p.findings}
    assert stale == {
        (name, qid) for name in ("qubit_frequency", "pi_amplitude") for qid in ("Q0", "Q1")
    } | {("cz_fidelity", "Q0-Q1")}
    assert report.counts[Finding.STALE] == 5
    recommended = steps_of(report)
    for qid in ("Q0", "Q1"):
        assert [step for step, target in recommended if target == qid] == [
            "CheckFrequency",
            "CheckRabi",
            "CheckT1",
            "CheckRamsey",
            "CheckT2Echo",
            "CheckReadoutFidelity",
        ]
    assert ("CheckCZ", "Q0-Q1") in recommended
    frequency = next(r for r in report.recommendations if r.target == "Q0")
    assert frequency.flagged == ["qubit_frequency:Q0"]
    assert "limit 24 h" in frequency.reasons[0]
    rabi = report.recommendations[recommended.index(("CheckRabi", "Q0"))]
    assert rabi.flagged == ["pi_amplitude:Q0"]
    t1 = report.recommendations[recommended.index(("CheckT1", "Q0"))]
    assert t1.flagged == []
    assert "runs after CheckFrequency on Q0" in t1.reasons[0]


def test_chip_health_t1_worse_in_three_versions_is_degrading(
    repository: MongoProvenanceRepository, health: HealthService
) -> None:
    for index, t1 in enumerate((70e-6, 60e-6, 55e-6, 50e-6)):
        calibrate(repository, f"e{index}", t1=t1)

    report = health.chip_health(CHIP)

    t1 = next(p for p in report.parameters if p.parameter_name == "t1")
    assert t1.findings == [Finding.DEGRADING]
    assert t1.worsening_versions == 3
    assert t1.version == 4
    assert t1.change_per_day is not None
    assert t1.change_per_day < 0
    assert "last 3 versions" in t1.reasons[0]
    # Nothing runs after CheckT1: the one step to run.
    assert steps_of(report) == [("CheckT1", "Q0")]


def test_chip_health_worsening_within_the_errors_is_not_a_trend(
    repository: MongoProvenanceRepository, health: HealthService
) -> None:
    calibrate(repository, "e0")
    for index, t1 in enumerate((70e-6, 60e-6, 55e-6, 50e-6)):
        repository.record(
            make_record(f"e{index + 1}", "t1", {"t1": Measured(value=t1, unit="s", error=8e-6)})
        )

    report = health.chip_health(CHIP)

    t1 = next(p for p in report.parameters if p.parameter_name == "t1")
    # 55 -> 50 is within the combined error (11.3 us): the trend ends at once.
    assert t1.worsening_versions == 0
    assert Finding.DEGRADING not in t1.findings


def test_chip_health_out_of_spec_fidelity_and_missing_qubit(
    repository: MongoProvenanceRepository, health: HealthService
) -> None:
    calibrate(repository, "e1", "Q0", readout_fidelity=0.8)

    report = health.chip_health(CHIP, targets=["Q0", "Q1"])

    fidelity = next(p for p in report.parameters if p.parameter_name == "readout_fidelity")
    assert fidelity.qid == "Q0"
    assert fidelity.findings == [Finding.OUT_OF_SPEC]
    assert "below the minimum 0.85" in fidelity.reasons[0]
    missing = {p.parameter_name for p in report.parameters if p.qid == "Q1"}
    assert missing == set(HEALTHY_QUBIT)
    assert report.counts[Finding.MISSING] == len(HEALTHY_QUBIT)
    recommended = steps_of(report)
    assert ("CheckReadoutFidelity", "Q0") in recommended
    assert [s for s, t in recommended if t == "Q0"] == ["CheckReadoutFidelity"]
    assert next(s for s, t in recommended if t == "Q1") == "CheckFrequency"


def test_chip_health_reads_only_its_own_chip(
    repository: MongoProvenanceRepository, health: HealthService
) -> None:
    calibrate(repository, "e1", "Q0")
    for index, t1 in enumerate((70e-6, 60e-6, 55e-6, 50e-6)):
        calibrate(repository, f"b{index}", chip_id="chipB", t1=t1)

    assert health.chip_health(CHIP).healthy
    other = health.chip_health("chipB")
    assert steps_of(other) == [("CheckT1", "Q0")]
    with pytest.raises(ChipNotFoundError, match="'unknown-chip'"):
        health.chip_health("unknown-chip")


def test_chip_health_text_value_with_a_spec_is_out_of_spec(
    repository: MongoProvenanceRepository, health: HealthService
) -> None:
    calibrate(repository, "e1")
    repository.record(make_record("e2", "odd", {"t1": "unmeasurable"}))

    t1 = next(p for p in health.chip_health(CHIP).parameters if p.parameter_name == "t1")

    assert t1.findings == [Finding.OUT_OF_SPEC]
    assert "not a finite number" in t1.reasons[0]


def test_chip_health_empty_chip_id_is_refused(health: HealthService) -> None:
    with pytest.raises(InvalidTargetError, match="non-empty"):
        health.chip_health("")
