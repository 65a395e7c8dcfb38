import re
from pathlib import Path

import pytest

from qops.calibration.errors import (
    FitError,
    InvalidInputError,
    MeasurementDatabaseError,
    MetadataInstrumentError,
    MissingInputError,
)
from qops.calibration.graph import CALIBRATION_STEPS, PARAMETER_UNITS, StepName
from qops.calibration.measurement import MeasurementContext
from qops.calibration.steps import (
    DecaySettings,
    FrequencySettings,
    check_frequency,
    check_rabi,
    check_ramsey,
    check_t1,
    run_step,
)
from qops.chip import SimulatedChip, UnknownPairError, UnknownQubitError
from tests.chip_support import TagRecorder, open_chip, true_inputs

QUBIT_STEPS = [s for s in StepName if s is not StepName.CHECK_CZ]


@pytest.mark.parametrize("step", list(StepName))
def test_run_step_true_inputs_recovers_hidden_values_within_four_sigma(
    context: MeasurementContext, chip: SimulatedChip, step: StepName
) -> None:
    target = "Q0-Q1" if step is StepName.CHECK_CZ else "Q1"
    result = run_step(context, step, target, true_inputs(chip, step, target))

    assert result.step is step
    assert result.target == target
    assert set(result.outputs) == set(CALIBRATION_STEPS[step].outputs)
    truth = chip.pair_truth(target) if step is StepName.CHECK_CZ else chip.truth(target)
    for name, fitted in result.outputs.items():
        assert fitted.unit == PARAMETER_UNITS[name]
        assert 0 < fitted.error < 0.1 * abs(fitted.value)
        assert abs(fitted.value - getattr(truth, name)) < 4 * fitted.error, name


def test_run_step_same_seed_same_results(qh_meta: TagRecorder, tmp_path: Path) -> None:
    outputs = []
    for run in ("a", "b"):
        with open_chip(f"chip_{run}") as chip:
            context = MeasurementContext(chip, qh_meta, tmp_path / f"{run}.db")
            values: dict[str, float] = {}
            for step in QUBIT_STEPS:
                result = run_step(context, step, "Q2", values)
                values.update({k: v.value for k, v in result.outputs.items()})
            outputs.append(values)
    assert outputs[0] == outputs[1]


def test_check_rabi_detuned_drive_lowers_contrast(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    true_frequency = chip.truth("Q0").qubit_frequency
    on = check_rabi(context, "Q0", {"qubit_frequency": true_frequency})
    off = check_rabi(context, "Q0", {"qubit_frequency": true_frequency + 8e6})
    on_contrast = on.diagnostics["rabi_contrast"]
    off_contrast = off.diagnostics["rabi_contrast"]
    assert off_contrast.value < on_contrast.value - 10 * on_contrast.error
    assert off_contrast.value < 0.85 * on_contrast.value


def test_check_ramsey_wrong_frequency_shifts_fringes_and_refines_back(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    truth = chip.truth("Q0")
    inputs = {"qubit_frequency": truth.qubit_frequency, "pi_amplitude": truth.pi_amplitude}
    right = check_ramsey(context, "Q0", inputs)
    wrong = check_ramsey(
        context, "Q0", {**inputs, "qubit_frequency": truth.qubit_frequency - 200e3}
    )

    shift = (
        wrong.diagnostics["fringe_frequency"].value - right.diagnostics["fringe_frequency"].value
    )
    assert shift == pytest.approx(-200e3, abs=5e3)
    refined = wrong.outputs["qubit_frequency"]
    assert abs(refined.value - truth.qubit_frequency) < 4 * refined.error
    assert wrong.diagnostics["frequency_correction"].value == pytest.approx(200e3, abs=5e3)


def test_check_t1_wrong_pi_amplitude_lowers_decay_amplitude(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    truth = chip.truth("Q0")
    inputs = {"qubit_frequency": truth.qubit_frequency, "pi_amplitude": truth.pi_amplitude}
    good = check_t1(context, "Q0", inputs)
    bad = check_t1(context, "Q0", {**inputs, "pi_amplitude": 0.6 * truth.pi_amplitude})
    assert (
        bad.diagnostics["decay_amplitude"].value < 0.8 * good.diagnostics["decay_amplitude"].value
    )


def test_check_frequency_window_without_resonance_raises_fit_error(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    far = chip.truth("Q0").qubit_frequency + 80e6
    with pytest.raises(
        FitError, match=r"CheckFrequency on Q0: fit failed: no resonance found"
    ) as e:
        check_frequency(context, "Q0", {}, FrequencySettings(qubit_center=far))
    assert e.value.step == "CheckFrequency"
    assert e.value.target == "Q0"
    assert e.value.run_id is not None


def test_check_t1_without_excitation_raises_fit_error(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    inputs = {"qubit_frequency": chip.truth("Q2").qubit_frequency, "pi_amplitude": 0.0}
    with pytest.raises(
        FitError, match=r"CheckT1 on Q2: fit failed: T1 decay amplitude .* not significant"
    ):
        check_t1(context, "Q2", inputs)


def test_check_rabi_missing_input_raises_naming_it(context: MeasurementContext) -> None:
    with pytest.raises(MissingInputError, match="CheckRabi on Q0: missing input qubit_frequency"):
        check_rabi(context, "Q0", {"pi_amplitude": 0.3})


@pytest.mark.parametrize(
    ("value", "reason"), [(float("nan"), "not a finite number"), (50.0, "drive_frequency")]
)
def test_check_rabi_unusable_frequency_raises_invalid_input(
    context: MeasurementContext, value: float, reason: str
) -> None:
    with pytest.raises(
        InvalidInputError, match=f"CheckRabi on Q0: input qubit_frequency=.*{reason}"
    ):
        check_rabi(context, "Q0", {"qubit_frequency": value})


@pytest.mark.parametrize("step", list(StepName))
def test_run_step_unknown_target_raises_clear_error(
    context: MeasurementContext, step: StepName
) -> None:
    target = "Q5-Q6" if step is StepName.CHECK_CZ else "Q5"
    with pytest.raises(UnknownQubitError, match="'Q5' is not on chip 'chip'"):
        run_step(context, step, target, {})


def test_check_cz_pair_not_in_topology_raises_unknown_pair(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    with pytest.raises(UnknownPairError, match="'Q0-Q2' is not coupled on chip 'chip'"):
        run_step(context, StepName.CHECK_CZ, "Q0-Q2", true_inputs(chip, StepName.CHECK_CZ, "Q0-Q2"))


def test_measurement_context_path_under_a_file_raises_naming_path(
    chip: SimulatedChip, qh_meta: TagRecorder, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    path = blocker / "calibration.db"
    with pytest.raises(
        MeasurementDatabaseError, match=f"QCoDeS database {re.escape(str(path))} is not writable"
    ):
        MeasurementContext(chip, qh_meta, path)


def test_measurement_context_directory_as_database_raises_naming_path(
    chip: SimulatedChip, qh_meta: TagRecorder, tmp_path: Path
) -> None:
    with pytest.raises(
        MeasurementDatabaseError, match=f"QCoDeS database {re.escape(str(tmp_path))} "
    ):
        MeasurementContext(chip, qh_meta, tmp_path)


def test_measurement_context_not_a_database_file_raises_naming_path(
    chip: SimulatedChip, qh_meta: TagRecorder, tmp_path: Path
) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are not SQLite pages " * 200)
    with pytest.raises(
        MeasurementDatabaseError, match=f"QCoDeS database {re.escape(str(path))} .*not a database"
    ):
        MeasurementContext(chip, qh_meta, path)
    assert path.read_text().startswith("these are not SQLite pages")


def test_measurement_context_metadata_instrument_wrong_name_raises(
    chip: SimulatedChip, tmp_path: Path
) -> None:
    other = TagRecorder("tags")
    try:
        with pytest.raises(MetadataInstrumentError, match=r"'tags'.*must be named 'qh_meta'"):
            MeasurementContext(chip, other, tmp_path / "c.db")
    finally:
        other.close()


def test_measurement_context_metadata_instrument_cannot_tag_raises(
    tmp_path: Path,
) -> None:
    with (
        open_chip() as chip,
        open_chip("qh_meta") as not_tagging,
        pytest.raises(MetadataInstrumentError, match="needs reset"),
    ):
        MeasurementContext(chip, not_tagging, tmp_path / "c.db")


def test_check_t1_sweep_much_shorter_than_t1_raises_fit_error(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    truth = chip.truth("Q1")
    inputs = {"qubit_frequency": truth.qubit_frequency, "pi_amplitude": truth.pi_amplitude}
    reason = r"CheckT1 on Q1: fit failed: the signal is still decaying at the end of the sweep"
    with pytest.raises(FitError, match=reason):
        check_t1(context, "Q1", inputs, DecaySettings(max_delay=5e-6, points=21))
