from pathlib import Path

import pytest

from qops.calibration.graph import CALIBRATION_STEPS, StepName
from qops.calibration.plan import (
    ChipSpec,
    StepOutcome,
    StepResult,
    blocking_step,
    default_database_path,
    ordered_steps,
    resolve_chip_spec,
    select_targets,
    targets_of,
)
from qops.chip.errors import UnknownQubitError

LINE = ChipSpec(chip_id="line", n_qubits=3, topology=((0, 1), (1, 2)))


def test_select_targets_default_all_qubits_and_coupled_pairs() -> None:
    assert select_targets(LINE, None) == (["Q0", "Q1", "Q2"], ["Q0-Q1", "Q1-Q2"])


def test_select_targets_pairs_need_both_qubits_selected() -> None:
    assert select_targets(LINE, [" q0", "Q2", "Q0"]) == (["Q0", "Q2"], [])


def test_select_targets_unknown_qubit_raises_naming_it() -> None:
    with pytest.raises(UnknownQubitError, match="'Q7' is not on chip 'line'"):
        select_targets(LINE, ["Q7"])


def test_targets_of_pair_step_runs_on_pairs() -> None:
    cz = CALIBRATION_STEPS[StepName.CHECK_CZ]
    rabi = CALIBRATION_STEPS[StepName.CHECK_RABI]
    assert targets_of(cz, ["Q0", "Q1"], ["Q0-Q1"]) == ["Q0-Q1"]
    assert targets_of(rabi, ["Q0", "Q1"], ["Q0-Q1"]) == ["Q0", "Q1"]


def test_blocking_step_failed_prerequisite_on_one_qubit_of_a_pair_blocks() -> None:
    cz = CALIBRATION_STEPS[StepName.CHECK_CZ]
    results = {
        (StepName.CHECK_RAMSEY, "Q0"): StepResult(
            step=StepName.CHECK_RAMSEY, target="Q0", outcome=StepOutcome.COMPLETED
        ),
        (StepName.CHECK_RAMSEY, "Q1"): StepResult(
            step=StepName.CHECK_RAMSEY, target="Q1", outcome=StepOutcome.FAILED, reason="fit"
        ),
    }
    blocker = blocking_step(cz, "Q0-Q1", results)
    assert blocker is not None
    assert (blocker.step, blocker.target, blocker.outcome) == (
        StepName.CHECK_RAMSEY,
        "Q1",
        StepOutcome.FAILED,
    )


def test_blocking_step_prerequisite_not_run_reported_as_skipped() -> None:
    rabi = CALIBRATION_STEPS[StepName.CHECK_RABI]
    blocker = blocking_step(rabi, "Q0", {})
    assert blocker is not None
    assert blocker.outcome is StepOutcome.SKIPPED
    assert blocker.reason == "not run"
    assert blocking_step(CALIBRATION_STEPS[StepName.CHECK_FREQUENCY], "Q0", {}) is None


def test_ordered_steps_follow_the_graph() -> None:
    assert [s.name for s in ordered_steps()] == list(CALIBRATION_STEPS)


def test_resolve_chip_spec_without_config_two_qubits_one_coupler() -> None:
    spec = resolve_chip_spec(None, None, seed=7, default_chip_id="fallback")
    assert spec == ChipSpec(chip_id="fallback", n_qubits=2, topology=((0, 1),), seed=7)
    assert resolve_chip_spec(None, "mine", 7, "fallback").chip_id == "mine"


def test_resolve_chip_spec_config_gives_structure_chip_id_overrides(tmp_path: Path) -> None:
    config = tmp_path / "backend.yaml"
    config.write_text("name: line-3\nchip_id: chip-line\nnqubits: 3\ntopology: [[0, 1], [1, 2]]\n")
    spec = resolve_chip_spec(config, None, 1, "fallback")
    assert (spec.chip_id, spec.n_qubits, spec.topology) == ("chip-line", 3, ((0, 1), (1, 2)))
    assert resolve_chip_spec(config, "renamed", 1, "fallback").chip_id == "renamed"


def test_default_database_path_under_data_dir_per_chip(tmp_path: Path) -> None:
    assert default_database_path(tmp_path, "c1") == tmp_path / "calibration" / "c1.db"


def test_cli_seed_default_is_the_plans() -> None:
    """``qops calibrate`` and ``qops maintain`` show the seed the flows default to."""
    from qops.calibration.plan import DEFAULT_SEED
    from qops.cli import calibrate

    assert calibrate.DEFAULT_SEED == DEFAULT_SEED
