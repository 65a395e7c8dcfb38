"""``@calibration_task``: an ordinary Prefect task that records its own provenance.

The Prefect binding of :class:`qops.calibration.recording.RecordedCalibration`, which does the
work (reads the input versions, calls the function, records the activity, the versions and
their lineage, or the failed activity) inside the task run, not in a state hook whose
failures Prefect would only log. This module supplies what only Prefect knows: the task
and flow run ids and the flow name from ``prefect.runtime``, the MongoDB settings (a block
or ``QOPS_*``), and the ``task(...)`` options.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from prefect import Task, task
from prefect.runtime import flow_run, task_run

from qops.calibration.recording import (
    CalibrationFunction,
    CalibrationOutcome,
    ProvenanceSink,
    RunIds,
    recorded_calibration,
)
from qops.provenance.config import ProvenanceSettings
from tasks.settings import mongo_settings


def _run_ids() -> RunIds:
    """The ids of the current Prefect task run (and of its flow run, if any)."""
    flow_run_id = flow_run.get_id()
    return RunIds(
        task_id=str(task_run.get_id() or ""),
        flow_run_id=str(flow_run_id) if flow_run_id else None,
        flow_name=flow_run.get_flow_name() if flow_run_id else None,
        runner="prefect",
    )


def calibration_task(
    *,
    outputs: Sequence[str],
    inputs: Sequence[str] = (),
    name: str | None = None,
    task_type: str = "calibration",
    mongodb_block: str | None = None,
    retries: int = 2,
    retry_delay_seconds: float | list[float] = 2.0,
    **task_options: Any,
) -> Callable[[CalibrationFunction], Task[..., CalibrationOutcome]]:
    """Make a function a Prefect task that records its calibration provenance.

    The function's contract (``qid``, the optional ``execution_id``, ``project_id``,
    ``chip_id`` and ``inputs``, the returned outputs) is
    :class:`~qops.calibration.recording.RecordedCalibration`'s; outside an argument the
    execution id is the flow run id (the task run id outside a flow).

    Args:
        outputs: Parameters the task writes (a new version each per run).
        inputs: Parameters of the same ``qid`` (of both qubits, for a pair) the task reads;
            each must have a current version, else the run fails with
            :class:`~qops.provenance.errors.MissingInputError`.
        name: Task name recorded as ``task_name`` (default: the function name in CamelCase,
            ``check_t1`` -> ``CheckT1``, the documented form); the Prefect task is named
            with its kebab-case form (``check-t1``), its runs ``check-t1-<qid>``.
        task_type: Recorded activity type.
        mongodb_block: Name of a ``qops-mongodb-connection`` block; ``None`` reads ``QOPS_*``.
        retries: Prefect retries of the whole run (body and recording).
        retry_delay_seconds: Prefect delay between retries.
        task_options: Further :func:`prefect.task` options.

    Returns:
        A decorator producing a ``Task`` whose result is a
        :class:`~qops.calibration.recording.CalibrationOutcome`.

    Raises:
        TypeError: At once if ``outputs`` is empty; at decoration if the function takes no
            ``qid``.
    """
    declare = recorded_calibration(outputs=outputs, inputs=inputs, name=name, task_type=task_type)

    def decorate(
        function: CalibrationFunction,
    ) -> Task[..., CalibrationOutcome]:
        recorded = declare(function)

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> CalibrationOutcome:
            # Settings are read per run, so a run sees the environment (or block) of its time.
            sink = ProvenanceSink.mongo(mongo_settings(mongodb_block))
            return recorded.run(_run_ids(), sink, ProvenanceSettings(), *args, **kwargs)

        run.__signature__ = recorded.signature  # type: ignore[attr-defined]
        options: dict[str, Any] = {
            "name": recorded.kebab_name,
            "retries": retries,
            "retry_delay_seconds": retry_delay_seconds,
            "task_run_name": f"{recorded.kebab_name}-{{qid}}",
            **task_options,
        }
        return task(run, **options)

    return decorate
