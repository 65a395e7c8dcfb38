"""Provenance-aware calibration tasks: one Prefect task per step of the calibration graph.

Each task measures its qubit (or pair) of the simulated chip through QCoDeS, fits the data
and returns the fitted values (``qops.calibration.steps``); ``@calibration_task`` records the
provenance. The tasks are built from ``qops.calibration.graph.CALIBRATION_STEPS``, so their
declared inputs and outputs are the dependency graph's.
"""

from __future__ import annotations

from collections.abc import Mapping

from prefect import Task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun

from qops.calibration.errors import CalibrationError
from qops.calibration.graph import CALIBRATION_STEPS, StepName, StepSpec
from qops.calibration.recording import CalibrationOutcome
from qops.calibration.steps import step_measurement
from qops.chip.errors import ChipError
from tasks.provenance import calibration_task


def _retry_unless_chip_error(task: Task[..., object], run: TaskRun, state: State) -> bool:
    """Retry transient failures only: a failed fit, a bad input or an unknown qubit fails the
    same way again."""
    try:
        state.result()
    except (ChipError, CalibrationError):
        return False
    except Exception:  # any other failure (database, I/O) may be transient
        return True
    return False


def _build(spec: StepSpec) -> Task[..., CalibrationOutcome]:
    return calibration_task(
        outputs=spec.outputs,
        inputs=spec.inputs,
        name=spec.name.value,  # recorded as CheckT1; the Prefect task is check-t1
        task_type=spec.scope.value,
        retries=1,
        retry_delay_seconds=1.0,
        retry_condition_fn=_retry_unless_chip_error,
        cache_policy=NO_CACHE,
    )(step_measurement(spec.name))


CALIBRATION_TASKS: Mapping[StepName, Task[..., CalibrationOutcome]] = {
    name: _build(spec) for name, spec in CALIBRATION_STEPS.items()
}
"""The calibration task of each step (e.g. ``CALIBRATION_TASKS[StepName.CHECK_RABI]``)."""
