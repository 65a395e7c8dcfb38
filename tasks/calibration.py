"""Provenance-aware calibration tasks: one Prefect task per step of the chip's graph.

Each task measures its qubit (or pair) of the simulated chip through QCoDeS, fits the data
and returns the fitted values; ``@calibration_task`` records the provenance. The tasks are
built from ``qops.chip.steps.CALIBRATION_STEPS``, so their declared inputs and outputs are
the dependency graph's.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from pathlib import Path

from prefect import Task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun

from qops.calibration.plan import ChipSpec
from qops.chip.errors import ChipError
from qops.chip.instrument import SimulatedChip
from qops.chip.measurements import MeasurementContext, run_step
from qops.chip.steps import CALIBRATION_STEPS, StepName, StepSpec
from qops.provenance.models import Measured
from qops.qcodes_metadata import QHMetaData
from tasks.provenance import CalibrationOutcome, InputValues, calibration_task

_lock = threading.Lock()
_chips: dict[str, tuple[ChipSpec, int, SimulatedChip]] = {}
_metadata: list[QHMetaData] = []


def simulated_chip(spec: ChipSpec, epoch: int) -> SimulatedChip:
    """The process's simulated chip for ``spec`` at drift ``epoch`` (built once, reused).

    QCoDeS instrument names are global in a process, so a chip built for another epoch is
    closed before its successor takes the name.
    """
    with _lock:
        held = _chips.get(spec.chip_id)
        if held is not None and held[0] == spec and held[1] == epoch:
            return held[2]
        if held is not None:
            held[2].close()
        name = "sim_" + re.sub(r"\W", "_", spec.chip_id)
        chip = SimulatedChip(name, spec.n_qubits, spec.topology, seed=spec.seed, epoch=epoch)
        _chips[spec.chip_id] = (spec, epoch, chip)
        return chip


def metadata_instrument() -> QHMetaData:
    """The process's ``qh_meta`` instrument (QCoDeS allows one per name)."""
    with _lock:
        if not _metadata:
            _metadata.append(QHMetaData("qh_meta", static_tags=["qops-calibration"]))
        return _metadata[0]


def close_instruments() -> None:
    """Close the process's simulated chips and ``qh_meta`` (frees their QCoDeS names)."""
    with _lock:
        for _, _, chip in _chips.values():
            chip.close()
        _chips.clear()
        for metadata in _metadata:
            metadata.close()
        _metadata.clear()


def measurement_context(
    spec: ChipSpec, epoch: int, database_path: Path, execution_id: str
) -> MeasurementContext:
    """Where the measurements of one calibration run go.

    Raises:
        qops.chip.errors.MeasurementDatabaseError: ``database_path`` cannot be written.
    """
    return MeasurementContext(
        simulated_chip(spec, epoch),
        metadata_instrument(),
        database_path,
        experiment_name=spec.chip_id,
        tags=[f"execution:{execution_id}"],
        attributes={"execution_id": execution_id, "chip_id": spec.chip_id},
    )


def _retry_unless_chip_error(task: Task[..., object], run: TaskRun, state: State) -> bool:
    """Retry transient failures only: a failed fit or a bad input fails the same way again."""
    try:
        state.result()
    except ChipError:
        return False
    except Exception:  # any other failure (database, I/O) may be transient
        return True
    return False


def _words(step: StepName, separator: str) -> str:
    """``CheckT2Echo`` -> ``check-t2-echo`` (or ``check_t2_echo``)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", separator, step.value).lower()


def _build(spec: StepSpec) -> Task[..., CalibrationOutcome]:
    step = spec.name

    def measure(
        qid: str,
        chip: ChipSpec,
        epoch: int,
        database_path: str,
        execution_id: str,
        project_id: str,
        chip_id: str,
        inputs: InputValues,
    ) -> Mapping[str, Measured]:
        context = measurement_context(chip, epoch, Path(database_path), execution_id)
        values = {key: float(use.value) for key, use in inputs.items()}
        result = run_step(context, step, qid, values)
        return {
            name: Measured(value=fitted.value, unit=fitted.unit, error=fitted.error)
            for name, fitted in result.outputs.items()
        }

    measure.__name__ = _words(step, "_")
    measure.__qualname__ = measure.__name__
    return calibration_task(
        outputs=spec.outputs,
        inputs=spec.inputs,
        name=_words(step, "-"),
        task_type=spec.scope.value,
        retries=1,
        retry_delay_seconds=1.0,
        retry_condition_fn=_retry_unless_chip_error,
        cache_policy=NO_CACHE,
    )(measure)


CALIBRATION_TASKS: Mapping[StepName, Task[..., CalibrationOutcome]] = {
    name: _build(spec) for name, spec in CALIBRATION_STEPS.items()
}
"""The calibration task of each step (e.g. ``CALIBRATION_TASKS[StepName.CHECK_RABI]``)."""
