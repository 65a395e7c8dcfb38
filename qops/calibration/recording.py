"""Running a calibration function so that it records its own provenance (no Prefect).

This is the core of ``@calibration_task`` (``tasks/provenance.py``, the Prefect binding that
only supplies the run ids and the task options). A :class:`RecordedCalibration` wraps a
function that measures and returns its outputs; :meth:`RecordedCalibration.run`, in the
caller's thread:

1. writes the records waiting in this machine's outbox (a task with inputs only; it fails
   with :class:`~qops.provenance.errors.OutboxPendingError` if some still wait), then reads
   the current version of each declared input parameter of the run's ``qid`` and hands the
   values to the function as ``inputs`` (if it accepts that keyword);
2. when the function returns, records the activity, ``used`` for every input, a new version
   per output, ``wasGeneratedBy`` and ``wasDerivedFrom`` (to the inputs and to the previous
   version of the same parameter), through :class:`~qops.provenance.recorder.ProvenanceRecorder`;
   a function that returns :class:`Fitted` also names the raw measurements (QCoDeS runs)
   its outputs were fitted from: the activity ``used`` them and every output
   ``wasDerivedFrom`` them;
3. when the function raises, records the activity as ``failed`` with no versions and
   re-raises, so the caller's retries run as usual.

A recording failure propagates (so a retry completes the record); if MongoDB is unreachable
the record goes to the durable outbox under the data directory and is replayed later in
order.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import Field

from qops.calibration.graph import input_key
from qops.config import MongoSettings
from qops.provenance.config import ProvenanceSettings
from qops.provenance.errors import MissingInputError, OutboxPendingError, OutputMismatchError
from qops.provenance.models import (
    ActivityStatus,
    Agent,
    AgentType,
    DatasetEntity,
    InputUse,
    Measured,
    RecordResult,
    TaskRecord,
    check_measured,
)
from qops.provenance.outbox import Outbox, outbox_path
from qops.provenance.recorder import ProvenanceRecorder, lazy_mongo_repository
from qops.provenance.repository import ProvenanceRepository
from qops.timeutil import utc_now

logger = logging.getLogger(__name__)

InputValues = Mapping[str, InputUse]
"""What a calibration function receives as ``inputs``: input key -> current version."""

OutputValue = Measured | float | int | str
"""What a calibration function returns per output: a :class:`Measured` or a bare value."""


@dataclass(frozen=True)
class Fitted:
    """What a calibration function returns when it knows the data its outputs came from.

    Attributes:
        outputs: The outputs by parameter name.
        datasets: The raw measurements (QCoDeS runs) the outputs were fitted from.
    """

    outputs: Mapping[str, OutputValue]
    datasets: Sequence[DatasetEntity] = ()


CalibrationFunction = Callable[..., Mapping[str, OutputValue] | Fitted]
"""A function that measures one ``qid`` and returns its outputs by parameter name (or
:class:`Fitted`, with the raw measurements they were fitted from)."""


class CalibrationOutcome(RecordResult):
    """What a recorded calibration run returns: its outputs and what was recorded.

    Attributes:
        outputs: The outputs as returned by the function, normalised to :class:`Measured`.
        inputs: The input versions the run used, by input key.
    """

    outputs: dict[str, Measured]
    inputs: dict[str, InputUse]
    datasets: list[DatasetEntity] = Field(default_factory=list)


@dataclass(frozen=True)
class RunIds:
    """Who runs a calibration function, as its orchestrator names the run.

    Attributes:
        task_id: The run's own id, unique per run (the activity id derives from it); must
            not be empty.
        flow_run_id: The enclosing flow run, if any: the default execution id.
        flow_name: The enclosing flow's name, for the system agent.
        runner: What runs it, for the system agent recorded when no user is configured:
            ``"<runner>:<flow_name>"``, ``"<runner>:task"`` outside a flow (the Prefect
            binding passes ``"prefect"``).
    """

    task_id: str
    flow_run_id: str | None = None
    flow_name: str | None = None
    runner: str = "qops"


@dataclass(frozen=True)
class ProvenanceSink:
    """Where a run's provenance goes: the repository, and the outbox while it is down.

    Attributes:
        repository: Returns a ready repository; may raise
            :class:`~qops.errors.MongoUnavailableError` (the record then goes to the outbox).
        outbox: Where records wait while MongoDB is unreachable.
    """

    repository: Callable[[], ProvenanceRepository]
    outbox: Outbox

    @classmethod
    def mongo(cls, settings: MongoSettings) -> ProvenanceSink:
        """MongoDB of ``settings``, connected on first use, and the data directory's outbox.

        Connecting on first use lets a run without inputs measure (and defer its record to
        the outbox) while MongoDB is down.
        """
        return cls(lazy_mongo_repository(settings), Outbox(outbox_path(settings.data_dir)))


def recorded_task_name(function_name: str) -> str:
    """``check_t2_echo`` -> ``CheckT2Echo``: the ``task_name`` recorded for a function.

    The documented form of a provenance ``task_name`` is CamelCase (``CheckFrequency``,
    ``CheckT1``), like the calibration step names of :class:`qops.calibration.graph.StepName`.
    """
    return "".join(part[:1].upper() + part[1:] for part in function_name.split("_") if part)


def kebab_task_name(task_name: str) -> str:
    """``CheckT2Echo`` -> ``check-t2-echo`` (``CheckCZ`` -> ``check-cz``): an orchestrator's name.

    Prefect task names and run names are kebab case; a name already in kebab case is kept.
    """
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", task_name).replace("_", "-").lower()


def _normalise_outputs(
    task_name: str, declared: Sequence[str], returned: object
) -> dict[str, Measured]:
    if not isinstance(returned, Mapping):
        raise OutputMismatchError(task_name, sorted(declared), [f"<{type(returned).__name__}>"])
    missing = sorted(set(declared) - set(returned))
    unexpected = sorted(str(k) for k in set(returned) - set(declared))
    if missing or unexpected:
        raise OutputMismatchError(task_name, missing, unexpected)
    produced = {
        name: value if isinstance(value, Measured) else Measured(value=value)
        for name, value in returned.items()
    }
    for name, measured in produced.items():
        check_measured(name, measured, task_name)
    return produced


MAX_ERROR_MESSAGE = 10_000
"""Most characters of a failed run's recorded error message (the rest is cut)."""


def _error_message(error: Exception) -> str:
    text = f"{type(error).__name__}: {error}"
    if len(text) > MAX_ERROR_MESSAGE:
        text = text[:MAX_ERROR_MESSAGE] + f"... ({len(text) - MAX_ERROR_MESSAGE} more characters)"
    return text


@dataclass(frozen=True)
class _Run:
    """Who and what one run is: from the call's arguments, the run ids and the settings."""

    qid: str
    task_id: str
    execution_id: str
    project_id: str
    chip_id: str
    agent: Agent

    @classmethod
    def of(cls, arguments: Mapping[str, object], ids: RunIds, settings: ProvenanceSettings) -> _Run:
        qid = arguments.get("qid")
        if not isinstance(qid, str) or not qid:
            raise TypeError(f"a calibration task needs a non-empty str argument qid, got {qid!r}")
        if settings.provenance_user:
            agent = Agent(agent_type=AgentType.USER, name=settings.provenance_user)
        else:
            agent = Agent(
                agent_type=AgentType.SYSTEM, name=f"{ids.runner}:{ids.flow_name or 'task'}"
            )
        return cls(
            qid=qid,
            task_id=ids.task_id,
            execution_id=str(
                arguments.get("execution_id") or ids.flow_run_id or f"task-{ids.task_id}"
            ),
            project_id=str(arguments.get("project_id") or settings.project_id),
            chip_id=str(arguments.get("chip_id") or settings.chip_id),
            agent=agent,
        )


def _input_key(parameter_name: str, qubit: str, run_qid: str) -> str:
    """The parameter name for a qubit run; ``name:qubit`` for a pair run (``"Q0-Q1"``)."""
    return parameter_name if qubit == run_qid else input_key(parameter_name, qubit)


class RecordedCalibration:
    """A calibration function with its declared inputs and outputs, run with provenance.

    The function must take a ``str`` argument ``qid``. It may take ``execution_id``,
    ``project_id`` and ``chip_id`` arguments; absent or ``None`` they default to the flow
    run id (``task-<task_id>`` outside a flow), and the settings' project and chip. If it
    takes a keyword ``inputs`` it receives an :data:`InputValues` mapping (the caller does
    not pass it); for a pair run (``qid`` like ``"Q0-Q1"``) each input is read for both
    qubits and keyed ``{parameter_name}:{qubit}``. It returns a mapping ``parameter_name ->
    Measured | value`` with exactly the declared outputs.

    Args:
        function: The calibration function.
        outputs: Parameters it writes (a new version each per run); at least one.
        inputs: Parameters of the same ``qid`` (of both qubits, for a pair) it reads.
        name: Task name recorded as ``task_name`` (default: the function name in
            CamelCase, ``check_t1`` -> ``CheckT1``); :attr:`kebab_name` is its kebab-case
            form for an orchestrator (``check-t1``).
        task_type: Recorded activity type.

    Raises:
        TypeError: ``outputs`` is empty, or the function takes no ``qid`` or takes
            positional-only or ``*args`` parameters (arguments are passed by name).
    """

    def __init__(
        self,
        function: CalibrationFunction,
        *,
        outputs: Sequence[str],
        inputs: Sequence[str] = (),
        name: str | None = None,
        task_type: str = "calibration",
    ) -> None:
        self.outputs = _declared_outputs(outputs)
        self.inputs = list(dict.fromkeys(inputs))
        self.task_type = task_type
        self.function = function
        signature = inspect.signature(function)
        if "qid" not in signature.parameters:
            raise TypeError(f"calibration task {function.__name__} must take an argument qid")
        self._takes_inputs = "inputs" in signature.parameters
        kinds = {p.kind for p in signature.parameters.values()}
        if kinds & {inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL}:
            raise TypeError(
                f"calibration task {function.__name__} must not take positional-only or *args "
                "parameters (arguments are passed by name)"
            )
        self._var_keyword = next(
            (n for n, p in signature.parameters.items() if p.kind is inspect.Parameter.VAR_KEYWORD),
            None,
        )
        self.signature = signature.replace(
            parameters=[p for n, p in signature.parameters.items() if n != "inputs"],
            return_annotation=CalibrationOutcome,
        )
        """The signature callers use: the function's without ``inputs``."""
        self.name = name or recorded_task_name(function.__name__)
        """The ``task_name`` recorded for each run (CamelCase, ``CheckT1``)."""
        self.kebab_name = kebab_task_name(self.name)
        """The name in kebab case (``check-t1``): the Prefect task name."""

    def run(
        self,
        ids: RunIds,
        sink: ProvenanceSink,
        settings: ProvenanceSettings,
        /,
        *args: object,
        **kwargs: object,
    ) -> CalibrationOutcome:
        """Call the function with ``args`` and ``kwargs`` and record the run.

        Args:
            ids: The run's ids, from its orchestrator.
            sink: Where the provenance goes.
            settings: Default project and chip, and the user recorded as the agent.
            args: Positional arguments, bound to :attr:`signature`.
            kwargs: Keyword arguments, bound to :attr:`signature`.

        Returns:
            The outputs, the input versions used, and what was recorded (or deferred).

        Raises:
            TypeError: The arguments do not fit the signature, or ``qid`` is not a
                non-empty str.
            OutboxPendingError: The task has inputs and records still wait in the outbox
                (recorded as failed).
            MissingInputError: A declared input has no current version (recorded as failed).
            InvalidValueError: An output cannot be stored (an int beyond 64 bits, a str
                over 1 MiB; recorded as failed).
            OutputMismatchError: The function returned other outputs than declared
                (recorded as failed).
            OutboxError: MongoDB is unreachable and the outbox cannot be written either.
            Exception: Whatever the function raised (recorded as failed).
        """
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        run = _Run.of(bound.arguments, ids, settings)
        started = utc_now()
        recorder = ProvenanceRecorder(sink.repository, sink.outbox)
        used: dict[str, InputUse] = {}
        try:
            self._drain_outbox(recorder)
            used = self._current_inputs(sink, run)
            named = dict(bound.arguments)
            extra = named.pop(self._var_keyword, {}) if self._var_keyword else {}
            if self._takes_inputs:
                named["inputs"] = used
            assert isinstance(extra, dict)
            returned = self.function(**named, **extra)
            datasets: list[DatasetEntity] = []
            if isinstance(returned, Fitted):
                datasets = list(returned.datasets)
                returned = returned.outputs
            produced = _normalise_outputs(self.name, self.outputs, returned)
        except Exception as e:
            failed = self._record(run, started, ActivityStatus.FAILED, used, {}, e)
            recorder.record(failed)
            raise
        result = recorder.record(
            self._record(run, started, ActivityStatus.COMPLETED, used, produced, datasets=datasets)
        )
        logger.info(
            "task %s for %s recorded versions %s%s",
            self.name,
            run.qid,
            result.versions,
            " (deferred to the outbox)" if result.deferred else "",
        )
        return CalibrationOutcome(
            **result.model_dump(), outputs=produced, inputs=used, datasets=datasets
        )

    def _drain_outbox(self, recorder: ProvenanceRecorder) -> None:
        """Write this machine's waiting records before the inputs are read.

        A version measured earlier may wait in the outbox; reading the inputs first would
        use its predecessor.

        Raises:
            OutboxPendingError: Records still wait (MongoDB unreachable, or a record
                failing under its attempt bound); the error names them.
        """
        if not self.inputs:
            return
        recorder.outbox.adopt_abandoned()  # a record left part-written by a killed run
        if not recorder.outbox.pending():
            return
        recorder.replay()
        waiting = recorder.outbox.waiting()
        if waiting:
            reason = (
                recorder.last_unreachable
                or recorder.last_report.blocked
                or "written by another process meanwhile"
            )
            raise OutboxPendingError(self.name, str(recorder.outbox.path), waiting, reason)

    def _current_inputs(self, sink: ProvenanceSink, run: _Run) -> dict[str, InputUse]:
        """The current version of each declared input (one query per qubit of the run)."""
        if not self.inputs:
            return {}
        used: dict[str, InputUse] = {}
        for qubit in run.qid.split("-"):
            current = sink.repository().current_inputs(
                run.project_id, run.chip_id, qubit, self.inputs
            )
            missing = [name for name in self.inputs if name not in current]
            if missing:
                raise MissingInputError(self.name, missing, qubit, run.project_id)
            for name in self.inputs:
                used[_input_key(name, qubit, run.qid)] = InputUse.of(current[name])
        return used

    def _record(
        self,
        run: _Run,
        started: datetime,
        status: ActivityStatus,
        used: Mapping[str, InputUse],
        produced: dict[str, Measured],
        error: Exception | None = None,
        *,
        datasets: Sequence[DatasetEntity] = (),
    ) -> TaskRecord:
        return TaskRecord(
            project_id=run.project_id,
            chip_id=run.chip_id,
            execution_id=run.execution_id,
            task_id=run.task_id,
            task_name=self.name,
            task_type=self.task_type,
            qid=run.qid,
            started_at=started,
            ended_at=utc_now(),
            status=status,
            agent=run.agent,
            inputs=list(used.values()),
            outputs=produced,
            datasets=list(datasets),
            error_message=_error_message(error) if error is not None else None,
        )


def _declared_outputs(outputs: Sequence[str]) -> list[str]:
    declared = list(dict.fromkeys(outputs))
    if not declared:
        raise TypeError("calibration_task needs at least one output")
    return declared


def recorded_calibration(
    *,
    outputs: Sequence[str],
    inputs: Sequence[str] = (),
    name: str | None = None,
    task_type: str = "calibration",
) -> Callable[[CalibrationFunction], RecordedCalibration]:
    """Decorator form of :class:`RecordedCalibration` (same arguments).

    Raises:
        TypeError: At once if ``outputs`` is empty; at decoration if the function does not
            fit (see :class:`RecordedCalibration`).
    """
    _declared_outputs(outputs)

    def decorate(function: CalibrationFunction) -> RecordedCalibration:
        return RecordedCalibration(
            function, outputs=outputs, inputs=inputs, name=name, task_type=task_type
        )

    return decorate
