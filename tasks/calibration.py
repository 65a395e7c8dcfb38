"""Provenance-aware calibration tasks: one Prefect task per step of the calibration graph.

Each task measures its qubit (or pair) of the simulated chip through QCoDeS, fits the data
and returns the fitted values (``qops.calibration.steps``); ``@calibration_task`` records the
provenance. The tasks are built from ``qops.calibration.graph.CALIBRATION_STEPS``, so their
declared inputs and outputs are the dependency graph's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from prefect import Task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun

from qops.calibration.errors import CalibrationError
from qops.calibration.graph import CALIBRATION_STEPS, StepName, StepSpec
from qops.calibration.instruments import measurement_context
from qops.calibration.plan import ChipSpec
from qops.calibration.recording import CalibrationOutcome, InputValues
from qops.calibration.steps import run_step
from qops.chip.errors import ChipError
from qops.provenance.models import Measured
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
        return run_step(context, step, qid, values).outputs

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
