"""Calibration measurements as the calibrate flow uses them: real QCoDeS runs, in threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import qcodes
from qcodes.dataset import connect, load_by_guid
from qcodes.station import Station

from qops.calibration.graph import CALIBRATION_STEPS, Scope, StepName, input_key
from qops.calibration.measurement import MeasurementContext, MeasurementResult
from qops.calibration.steps import run_step
from qops.chip import SimulatedChip
from tests.chip_support import TagRecorder, open_chip

QUBIT_STEPS = [s for s, spec in CALIBRATION_STEPS.items() if spec.scope is Scope.QUBIT]


def _calibrate_qubit(context: MeasurementContext, qid: str) -> list[MeasurementResult]:
    """Every qubit step in graph order, each using the latest outputs as inputs."""
    values: dict[str, float] = {}
    results = []
    for step in QUBIT_STEPS:
        result = run_step(context, step, qid, values)
        values.update({name: fitted.value for name, fitted in result.outputs.items()})
        results.append(result)
    return results


def _cz_inputs(results: dict[str, list[MeasurementResult]], pair: str) -> dict[str, float]:
    inputs = {}
    for qid in pair.split("-"):
        for result in results[qid]:
            for name, fitted in result.outputs.items():
                inputs[input_key(name, qid)] = fitted.value
    return inputs


def test_calibration_runs_in_database_with_qh_meta_tags_in_snapshot(
    context: MeasurementContext, chip: SimulatedChip, tmp_path: Path
) -> None:
    results = {"Q0": _calibrate_qubit(context, "Q0"), "Q1": _calibrate_qubit(context, "Q1")}
    cz = run_step(context, StepName.CHECK_CZ, "Q1-Q0", _cz_inputs(results, "Q0-Q1"))

    conn = connect(tmp_path / "calibration.db", read_only=True)
    try:
        for result in [*results["Q0"], *results["Q1"], cz]:
            dataset = load_by_guid(result.guid, conn=conn)
            assert dataset.run_id == result.run_id
            assert dataset.name == result.step
            assert dataset.exp_name == "calibration"
            assert dataset.sample_name == "chip"
            assert dataset.completed
            assert dataset.number_of_results >= 20

            snapshot = dataset.snapshot
            assert snapshot is not None
            instruments = snapshot["station"]["instruments"]
            assert set(instruments) == {"chip", "qh_meta"}
            meta = instruments["qh_meta"]["parameters"]
            assert {"simulation", "calibration", result.step, result.target} <= set(
                meta["tags"]["value"]
            )
            attributes = meta["attributes"]["value"]
            assert attributes["task"] == result.step
            assert attributes["qubit"] == result.target
            assert attributes["chip"] == "chip"
            for key, value in result.inputs.items():
                assert attributes[f"input.{key}"] == repr(value)

        # The chip's knobs in the snapshot are the inputs the run used.
        rabi = results["Q0"][1]
        rabi_snapshot = load_by_guid(rabi.guid, conn=conn).snapshot
        assert rabi_snapshot is not None
        q0 = rabi_snapshot["station"]["instruments"]["chip"]["submodules"]["Q0"]["parameters"]
        assert q0["drive_frequency"]["value"] == rabi.inputs["qubit_frequency"]
        assert q0["drive_frequency"]["unit"] == "Hz"
    finally:
        conn.close()

    assert cz.target == "Q0-Q1"
    ramsey = next(r for r in results["Q0"] if r.step is StepName.CHECK_RAMSEY)
    echo = next(r for r in results["Q0"] if r.step is StepName.CHECK_T2_ECHO)
    # The echo used the frequency Ramsey refined, and the run records it.
    assert echo.inputs["qubit_frequency"] == ramsey.outputs["qubit_frequency"].value


def test_calibration_qubits_in_parallel_threads_same_results_as_sequential(
    qh_meta: TagRecorder, tmp_path: Path
) -> None:
    with open_chip("sequential") as chip:
        context = MeasurementContext(chip, qh_meta, tmp_path / "sequential.db")
        sequential = {qid: _calibrate_qubit(context, qid) for qid in chip.qubit_ids}

    with open_chip("parallel") as chip:
        context = MeasurementContext(chip, qh_meta, tmp_path / "parallel.db")
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {qid: pool.submit(_calibrate_qubit, context, qid) for qid in chip.qubit_ids}
            parallel = {qid: future.result(timeout=120) for qid, future in futures.items()}

    for qid in sequential:
        assert [r.outputs for r in parallel[qid]] == [r.outputs for r in sequential[qid]]

    runs = [r for results in parallel.values() for r in results]
    assert len({r.run_id for r in runs}) == len(runs) == 3 * len(QUBIT_STEPS)
    conn = connect(tmp_path / "parallel.db", read_only=True)
    try:
        for result in runs:
            snapshot = load_by_guid(result.guid, conn=conn).snapshot
            assert snapshot is not None
            tags = snapshot["station"]["instruments"]["qh_meta"]["parameters"]
            assert tags["attributes"]["value"]["qubit"] == result.target
            assert tags["attributes"]["value"]["task"] == result.step
    finally:
        conn.close()


def test_calibration_after_drift_tracks_new_truth(
    context: MeasurementContext, chip: SimulatedChip
) -> None:
    first = {r.step: r for r in _calibrate_qubit(context, "Q2")}
    chip.drift(10)
    second = {r.step: r for r in _calibrate_qubit(context, "Q2")}

    truth = chip.truth("Q2")
    before = first[StepName.CHECK_RAMSEY].outputs["qubit_frequency"]
    after = second[StepName.CHECK_RAMSEY].outputs["qubit_frequency"]
    assert abs(after.value - truth.qubit_frequency) < 4 * after.error
    assert abs(after.value - before.value) > 10 * after.error


def test_measurements_leave_qcodes_global_state_alone(
    context: MeasurementContext, tmp_path: Path
) -> None:
    db_location = qcodes.config["core"]["db_location"]
    default_station = Station.default

    result = run_step(context, StepName.CHECK_FREQUENCY, "Q0", {})

    assert result.db_path == tmp_path / "calibration.db"
    assert qcodes.config["core"]["db_location"] == db_location
    assert Station.default is default_station
