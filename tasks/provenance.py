"""``@calibration_task``: an ordinary Prefect task that records its own provenance.

The decorated function does the measurement and returns its outputs; the decorator, as
part of the same task run (not in a state hook, whose failures Prefect would only log):

1. at start, reads the current version of each declared input parameter of the task's
   ``qid`` and hands the values to the function as ``inputs`` (if it accepts that keyword);
2. when the function returns, records the activity, ``used`` for every input, a new version
   per output, ``wasGeneratedBy`` and ``wasDerivedFrom`` (to the inputs and to the previous
   version of the same parameter), all through idempotent bulk writes;
3. when the function raises, records the activity as ``failed`` with no versions and
   re-raises, so Prefect's retries run as usual.

A recording failure fails the task run (and so is retried); if MongoDB is unreachable the
record goes to the durable outbox under the data directory and is replayed later in order.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from prefect import Task, task
from prefect.runtime import flow_run, task_run
from pymongo import MongoClient

from qops.config import MongoSettings
from qops.mongo import Document, connect
from qops.provenance.config import ProvenanceSettings
from qops.provenance.errors import MissingInputError, OutputMismatchError
from qops.provenance.models import (
    ActivityStatus,
    Agent,
    AgentType,
    InputUse,
    Measured,
    RecordResult,
    TaskRecord,
)
from qops.provenance.outbox import Outbox, outbox_path
from qops.provenance.recorder import ProvenanceRecorder
from qops.provenance.repository import MongoProvenanceRepository
from qops.timeutil import utc_now
from tasks.settings import mongo_settings

logger = logging.getLogger(__name__)

InputValues = Mapping[str, InputUse]
"""What a calibration task receives as ``inputs``: parameter name -> current version."""

OutputValue = Measured | float | int | str
"""What a calibration task returns per output: a :class:`Measured` or a bare value."""

__all__ = [
    "CalibrationOutcome",
    "InputUse",
    "InputValues",
    "Measured",
    "calibration_task",
    "input_key",
]


class CalibrationOutcome(RecordResult):
    """What a calibration task run returns: its outputs and what was recorded.

    Attributes:
        outputs: The outputs as returned by the task body.
        inputs: The input versions the run used.
    """

    outputs: dict[str, Measured]
    inputs: dict[str, InputUse]


_INDEXED: set[tuple[str, str]] = set()
"""Databases whose provenance indexes this process has ensured."""


class _LazyRepository:
    """Connects on first use, so a task without inputs runs (and defers its record to the
    outbox) while MongoDB is down; closes the client when the run ends."""

    def __init__(self, settings: MongoSettings) -> None:
        self.settings = settings
        self._client: MongoClient[Document] | None = None
        self._repository: MongoProvenanceRepository | None = None

    def get(self) -> MongoProvenanceRepository:
        """The repository; raises :class:`MongoUnavailableError` while MongoDB is down."""
        if self._repository is None:
            client = connect(self.settings)
            repository = MongoProvenanceRepository(client[self.settings.mongodb_db])
            # The unique version index is what keeps version numbers gap-free under
            # concurrent writers, so it must exist before the first write.
            url = self.settings.mongodb_url
            key = (url.get_secret_value() if url else "", self.settings.mongodb_db)
            if key not in _INDEXED:
                repository.ensure_indexes()
                _INDEXED.add(key)
            self._client, self._repository = client, repository
        return self._repository

    def __enter__(self) -> _LazyRepository:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._client is not None:
            self._client.close()


def _kebab(name: str) -> str:
    return name.replace("_", "-")


def _normalise_outputs(
    task_name: str, declared: Sequence[str], returned: object
) -> dict[str, Measured]:
    if not isinstance(returned, Mapping):
        raise OutputMismatchError(task_name, sorted(declared), [f"<{type(returned).__name__}>"])
    missing = sorted(set(declared) - set(returned))
    unexpected = sorted(str(k) for k in set(returned) - set(declared))
    if missing or unexpected:
        raise OutputMismatchError(task_name, missing, unexpected)
    return {
        name: value if isinstance(value, Measured) else Measured(value=value)
        for name, value in returned.items()
    }


class _Context:
    """Who and what a run is: read from the call's arguments, Prefect's runtime, settings."""

    def __init__(self, bound: inspect.BoundArguments, settings: ProvenanceSettings) -> None:
        arguments = bound.arguments
        qid = arguments.get("qid")
        if not isinstance(qid, str) or not qid:
            raise TypeError(f"a calibration task needs a non-empty str argument qid, got {qid!r}")
        self.qid = qid
        self.task_id = str(task_run.get_id() or "")
        flow_run_id = flow_run.get_id()
        self.execution_id = str(
            arguments.get("execution_id") or flow_run_id or f"task-{self.task_id}"
        )
        self.project_id = str(arguments.get("project_id") or settings.project_id)
        self.chip_id = str(arguments.get("chip_id") or settings.chip_id)
        if settings.provenance_user:
            self.agent = Agent(agent_type=AgentType.USER, name=settings.provenance_user)
        else:
            flow_name = flow_run.get_flow_name() if flow_run_id else None
            self.agent = Agent(agent_type=AgentType.SYSTEM, name=f"prefect:{flow_name or 'task'}")


def input_key(parameter_name: str, qid: str, task_qid: str) -> str:
    """Key of an input in ``inputs``: the parameter name for a qubit task, and
    ``{parameter_name}:{qubit}`` for a pair task (``qid`` ``"Q0-Q1"``), whose inputs are
    read for each of its two qubits."""
    return parameter_name if qid == task_qid else f"{parameter_name}:{qid}"


def _current_inputs(
    store: _LazyRepository, context: _Context, task_name: str, declared: Sequence[str]
) -> dict[str, InputUse]:
    """The current version of each declared input (one query per qubit of the task)."""
    if not declared:
        return {}
    used: dict[str, InputUse] = {}
    for qubit in context.qid.split("-"):
        current = store.get().current_inputs(context.project_id, qubit, declared)
        missing = [name for name in declared if name not in current]
        if missing:
            raise MissingInputError(task_name, missing, qubit, context.project_id)
        for name in declared:
            used[input_key(name, qubit, context.qid)] = InputUse.of(current[name])
    return used


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
) -> Callable[[Callable[..., Mapping[str, OutputValue]]], Task[..., CalibrationOutcome]]:
    """Make a function a Prefect task that records its calibration provenance.

    The function must take a ``str`` argument ``qid``. It may take ``execution_id``,
    ``project_id`` and ``chip_id`` arguments; absent or ``None`` they default to the flow
    run id (the task run id outside a flow), ``QOPS_PROJECT_ID`` and ``QOPS_CHIP_ID``. If
    it takes a keyword ``inputs`` it receives an :data:`InputValues` mapping (the caller
    does not pass it); for a pair task (``qid`` like ``"Q0-Q1"``) each input is read for
    both qubits and keyed ``{parameter_name}:{qubit}`` (see :func:`input_key`). It returns
    a mapping ``parameter_name -> Measured | value`` with exactly the declared ``outputs``.

    Args:
        outputs: Parameters the task writes (a new version each per run).
        inputs: Parameters of the same ``qid`` (of both qubits, for a pair) the task reads;
            each must have a current version, else the run fails with
            :class:`MissingInputError`.
        name: Task name recorded as ``task_name`` (default: kebab-case function name).
        task_type: Recorded activity type.
        mongodb_block: Name of a ``qops-mongodb-connection`` block; ``None`` reads ``QOPS_*``.
        retries: Prefect retries of the whole run (body and recording).
        retry_delay_seconds: Prefect delay between retries.
        task_options: Further :func:`prefect.task` options.

    Returns:
        A decorator producing a ``Task`` whose result is a :class:`CalibrationOutcome`.

    Raises:
        TypeError: At decoration, if ``outputs`` is empty or the function takes no ``qid``.
    """
    declared_outputs = list(dict.fromkeys(outputs))
    declared_inputs = list(dict.fromkeys(inputs))
    if not declared_outputs:
        raise TypeError("calibration_task needs at least one output")

    def decorate(
        function: Callable[..., Mapping[str, OutputValue]],
    ) -> Task[..., CalibrationOutcome]:
        signature = inspect.signature(function)
        if "qid" not in signature.parameters:
            raise TypeError(f"calibration task {function.__name__} must take an argument qid")
        takes_inputs = "inputs" in signature.parameters
        kinds = {p.kind for p in signature.parameters.values()}
        if kinds & {inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL}:
            raise TypeError(
                f"calibration task {function.__name__} must not take positional-only or *args "
                "parameters (arguments are passed by name)"
            )
        var_keyword = next(
            (n for n, p in signature.parameters.items() if p.kind is inspect.Parameter.VAR_KEYWORD),
            None,
        )
        public = signature.replace(
            parameters=[p for n, p in signature.parameters.items() if n != "inputs"],
            return_annotation=CalibrationOutcome,
        )
        task_name = name or _kebab(function.__name__)

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> CalibrationOutcome:
            bound = public.bind(*args, **kwargs)
            bound.apply_defaults()
            context = _Context(bound, ProvenanceSettings())
            started = utc_now()
            with _LazyRepository(mongo_settings(mongodb_block)) as store:
                return _run_recorded(store, context, started, bound)

        def _run_recorded(
            store: _LazyRepository,
            context: _Context,
            started: datetime,
            bound: inspect.BoundArguments,
        ) -> CalibrationOutcome:
            recorder = ProvenanceRecorder(store.get, Outbox(outbox_path(store.settings.data_dir)))

            def record(
                status: ActivityStatus,
                used: list[InputUse],
                produced: dict[str, Measured],
                error: str | None = None,
            ) -> RecordResult:
                return recorder.record(
                    TaskRecord(
                        project_id=context.project_id,
                        chip_id=context.chip_id,
                        execution_id=context.execution_id,
                        task_id=context.task_id,
                        task_name=task_name,
                        task_type=task_type,
                        qid=context.qid,
                        started_at=started,
                        ended_at=utc_now(),
                        status=status,
                        agent=context.agent,
                        inputs=used,
                        outputs=produced,
                        error_message=error,
                    )
                )

            used: dict[str, InputUse] = {}
            try:
                used = _current_inputs(store, context, task_name, declared_inputs)
                named = dict(bound.arguments)
                extra = named.pop(var_keyword, {}) if var_keyword else {}
                if takes_inputs:
                    named["inputs"] = used
                returned = function(**named, **extra)
                produced = _normalise_outputs(task_name, declared_outputs, returned)
            except Exception as e:
                record(ActivityStatus.FAILED, list(used.values()), {}, f"{type(e).__name__}: {e}")
                raise
            result = record(ActivityStatus.COMPLETED, list(used.values()), produced)
            logger.info(
                "task %s for %s recorded versions %s%s",
                task_name,
                context.qid,
                result.versions,
                " (deferred to the outbox)" if result.deferred else "",
            )
            return CalibrationOutcome(**result.model_dump(), outputs=produced, inputs=used)

        run.__signature__ = public  # type: ignore[attr-defined]
        options: dict[str, Any] = {
            "name": task_name,
            "retries": retries,
            "retry_delay_seconds": retry_delay_seconds,
            "task_run_name": f"{task_name}-{{qid}}",
            **task_options,
        }
        return task(run, **options)

    return decorate
