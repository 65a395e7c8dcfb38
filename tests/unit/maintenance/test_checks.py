"""Checks on the simulated chip through QCoDeS (a real temporary database): each says in
spec at the chip's true values, and out of spec or bad data when the chip moved away."""

from __future__ import annotations

import sqlite3

import pytest

from qops.calibration.graph import CALIBRATION_STEPS, Scope, StepName, input_key
from qops.calibration.measurement import MeasurementContext
from qops.chip import SimulatedChip
from qops.maintenance.checks import CheckValueError, CheckVerdict, run_check
from qops.maintenance.policy import MaintenancePolicy, load_policy

POLICY = load_policy()


def _truth_values(chip: SimulatedChip, step: StepName, target: str) -> dict[str, float]:
    """What a perfect calibration would have recorded: the hidden values."""
    spec = CALIBRATION_STEPS[step]
    if spec.scope is Scope.PAIR:
        values = {
            input_key(name, qid): float(getattr(chip.truth(qid), name))
            for qid in target.split("-")
            for name in spec.inputs
        }
        values["cz_fidelity"] = chip.pair_truth(target).cz_fidelity
        return values
    truth = chip.truth(target)
    return {name: float(getattr(truth, name)) for name in (*spec.inputs, *spec.outputs)}


@pytest.mark.parametrize("step", list(StepName))
def test_check_at_true_values_in_spec_with_few_points(
    context: MeasurementContext, chip: SimulatedChip, step: StepName
) -> None:
    target = "Q0-Q1" if CALIBRATION_STEPS[step].scope is Scope.PAIR else "Q1"
    result = run_check(context, step, target, _truth_values(chip, step, target), POLICY)
    assert result.verdict is CheckVerdict.IN_SPEC, result.reasons
    assert result.points <= 400  # a calibration of the step takes 61 to 2000 points
    with sqlite3.connect(context.db_path) as db:
        (name,) = db.execute("SELECT name FROM runs WHERE run_id = ?", (result.run_id,)).fetchone()
    assert name == step.value


def test_check_frequency_qubit_moved_2_mhz_out_of_spec(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    values = _truth_values(chip, StepName.CHECK_FREQUENCY, "Q0")
    chip.shift_truth("Q0", qubit_frequency=values["qubit_frequency"] + 2e6)
    result = run_check(context, StepName.CHECK_FREQUENCY, "Q0", values, POLICY)
    assert result.verdict is CheckVerdict.OUT_OF_SPEC
    assert "qubit line" in result.reasons[0]


def test_check_frequency_qubit_moved_far_away_bad_data(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    values = _truth_values(chip, StepName.CHECK_FREQUENCY, "Q0")
    chip.shift_truth("Q0", qubit_frequency=values["qubit_frequency"] + 50e6)
    result = run_check(context, StepName.CHECK_FREQUENCY, "Q0", values, POLICY)
    assert result.verdict is CheckVerdict.BAD_DATA
    assert "no qubit line" in result.reasons[0]


def test_check_ramsey_qubit_moved_300_khz_out_of_spec(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    values = _truth_values(chip, StepName.CHECK_RAMSEY, "Q2")
    chip.shift_truth("Q2", qubit_frequency=values["qubit_frequency"] + 300e3)
    result = run_check(context, StepName.CHECK_RAMSEY, "Q2", values, POLICY)
    assert result.verdict is CheckVerdict.OUT_OF_SPEC
    assert abs(result.estimates["qubit_offset_hz"]) == pytest.approx(300e3, rel=0.3)


def test_check_t1_halved_out_of_spec(context: MeasurementContext, chip: SimulatedChip) -> None:
    values = _truth_values(chip, StepName.CHECK_T1, "Q1")
    chip.shift_truth("Q1", t1=values["t1"] / 2)
    result = run_check(context, StepName.CHECK_T1, "Q1", values, POLICY)
    assert result.verdict is CheckVerdict.OUT_OF_SPEC
    assert result.estimates["t1"] == pytest.approx(values["t1"] / 2, rel=0.25)


def test_check_readout_fidelity_dropped_out_of_spec(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    values = _truth_values(chip, StepName.CHECK_READOUT_FIDELITY, "Q0")
    chip.shift_truth("Q0", readout_fidelity=values["readout_fidelity"] - 0.15)
    result = run_check(context, StepName.CHECK_READOUT_FIDELITY, "Q0", values, POLICY)
    assert result.verdict is CheckVerdict.OUT_OF_SPEC


def test_check_rabi_amplitude_far_off_out_of_spec(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    values = _truth_values(chip, StepName.CHECK_RABI, "Q0")
    values["pi_amplitude"] *= 0.5  # a π/2 pulse: half the contrast
    result = run_check(context, StepName.CHECK_RABI, "Q0", values, POLICY)
    assert result.verdict is CheckVerdict.OUT_OF_SPEC


def test_check_cz_with_a_detuned_qubit_out_of_spec(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    values = _truth_values(chip, StepName.CHECK_CZ, "Q1-Q2")
    chip.shift_truth("Q2", qubit_frequency=chip.truth("Q2").qubit_frequency + 3e6)
    result = run_check(context, StepName.CHECK_CZ, "Q2-Q1", values, POLICY)
    assert result.target == "Q1-Q2"
    assert result.verdict is CheckVerdict.OUT_OF_SPEC


def test_check_without_a_recorded_value_fails_naming_it(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    values = _truth_values(chip, StepName.CHECK_T1, "Q0")
    del values["t1"]
    with pytest.raises(CheckValueError, match=r"CheckT1 on Q0: t1 has no recorded value"):
        run_check(context, StepName.CHECK_T1, "Q0", values, POLICY)


def test_check_thresholds_come_from_the_policy(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    values = _truth_values(chip, StepName.CHECK_FREQUENCY, "Q0")
    chip.shift_truth("Q0", qubit_frequency=values["qubit_frequency"] + 150e3)
    lenient = run_check(context, StepName.CHECK_FREQUENCY, "Q0", values, POLICY)
    strict_policy = MaintenancePolicy.model_validate(
        {"checks": {"CheckFrequency": {"qubit_tolerance_hz": 20e3}}}
    )
    strict = run_check(context, StepName.CHECK_FREQUENCY, "Q0", values, strict_policy)
    assert lenient.verdict is CheckVerdict.IN_SPEC
    assert strict.verdict is CheckVerdict.OUT_OF_SPEC
