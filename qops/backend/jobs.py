"""The job commands of 2300: initialize, execute, terminate (the spec's locking and execute).

A 2200 runs circuits in a *session*: ``initialize`` locks the chip for execution (the
server then publishes EXECUTING), any number of ``execute`` requests with the same
``session_id`` run circuits, ``terminate`` unlocks it. :class:`JobService` keeps the one
session of its chip:

- ``initialize`` takes the chip's exclusive EXECUTING lease (:func:`qops.backend.locking.
  lock_chip`); it is refused while a calibration holds CALIBRATING, while the chip is
  OFFLINE, or while another session is initialized. Repeating it for the open session
  succeeds (a 2200 retrying a lost reply).
- ``execute`` is refused unless its ``session_id`` is the initialized session's. The circuit
  runs on the simulated chip with noise from the chip's current calibration values, read
  from the same calibration source get_dynamic answers from, so a recalibration changes
  the counts from the next execute on.
- ``terminate`` releases the lease. Terminating when no session is open succeeds (a retried
  terminate); terminating another session than the open one is refused.

A session without any request for ``execution.session_timeout_s`` is terminated by the
service itself (:meth:`JobService.expire_idle`), so a 2200 that died never keeps the chip
from being calibrated.

A simulation runs in a child process (:class:`~qops.simulation.worker.SimulationWorker`,
started at the first initialize) while the calling server thread waits and calls its
``keepalive``: the server keeps publishing its heartbeat during a long job (a circuit with
mid-circuit measurements is simulated shot by shot, and Qiskit Aer holds the GIL while it
simulates), and its sockets stay in its own thread.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from qops.backend.config import BackendConfig
from qops.backend.errors import (
    ChipBusyError,
    ChipInUseError,
    StateStoreError,
)
from qops.backend.locking import lock_chip
from qops.backend.sources import CalibrationSource, CalibrationValue, qubit_labels
from qops.backend.state import BackendStateStore, StateLease
from qops.errors import QopsError
from qops.protocol.errors import ProtocolError
from qops.protocol.messages import BackendState, Command, JsonObject
from qops.protocol.schemas import ProtocolSchemas, encode, protocol_schemas
from qops.simulation.cqasm import parse_circuit
from qops.simulation.errors import CircuitError, NoiseParameterError
from qops.simulation.noise import ChipNoise, QubitNoise
from qops.simulation.worker import SimulationWorker, SimulatorCrashedError

logger = logging.getLogger(__name__)

T1 = "t1"
T2_NAMES = ("t2_star", "t2_echo")
"""Dephasing times, in order of preference: circuits have no echo pulses."""
READOUT_FIDELITY = "readout_fidelity"
PAIR_FIDELITY_NAMES = ("cz_fidelity", "cnot_fidelity")
"""Two-qubit gate fidelities, in order of preference."""


class JobRefusedError(QopsError):
    """A job command that cannot be carried out; its message is the failure reply's.

    Args:
        command: The command refused.
        reason: Why, and what to do.
    """

    def __init__(self, command: Command, reason: str) -> None:
        self.command = command
        self.reason = reason
        super().__init__(f"{command} refused: {reason}")


def chip_noise(values: Iterable[CalibrationValue], version: str = "") -> ChipNoise:
    """The chip's noise from its calibration values (see :mod:`qops.simulation.noise`).

    Per qubit ``t1``, ``t2_star`` (else ``t2_echo``) and ``readout_fidelity``; per pair
    ``cz_fidelity`` (else ``cnot_fidelity``). Values of other names, of an unknown qid form,
    or ``None`` are not noise.
    """
    per_qubit: dict[int, dict[str, float]] = {}
    per_pair: dict[tuple[int, int], dict[str, float]] = {}
    for value in values:
        labels = qubit_labels(value.qid)
        if labels is None or value.value is None:
            continue
        indices = [int(label[1:]) for label in labels]
        if len(indices) == 1:
            per_qubit.setdefault(indices[0], {})[value.parameter_name] = value.value
        else:
            pair = (min(indices), max(indices))
            per_pair.setdefault(pair, {})[value.parameter_name] = value.value
    qubits = {
        index: QubitNoise(
            t1=named.get(T1),
            t2=_first(named, T2_NAMES),
            readout_fidelity=named.get(READOUT_FIDELITY),
        )
        for index, named in per_qubit.items()
    }
    pairs = {
        pair: fidelity
        for pair, named in per_pair.items()
        if (fidelity := _first(named, PAIR_FIDELITY_NAMES)) is not None
    }
    return ChipNoise(qubits=qubits, pair_fidelities=pairs, version=version)


def _first(named: dict[str, float], names: tuple[str, ...]) -> float | None:
    for name in names:
        if name in named:
            return named[name]
    return None


@dataclass
class Session:
    """The initialized session of the chip.

    Attributes:
        session_id: The 2200's session id, from its initialize.
        lease: The EXECUTING lease held for it.
        last_request: ``time.monotonic()`` of its latest request.
        jobs: How many circuits it ran.
    """

    session_id: str
    lease: StateLease
    last_request: float = field(default_factory=time.monotonic)
    jobs: int = 0


class JobService:
    """Answers initialize, execute and terminate for one chip.

    Args:
        config: The backend (its chip, qubits, topology, raw data support, limits).
        calibration: Where the chip's current calibration values come from.
        state_store: The shared store of the chip's leases.
        worker: Runs circuits; default a child process of its own seeded from
            ``config.execution.seed``. A worker passed in is not closed by :meth:`close`
            (several services may share one).
        keepalive: Called from the waiting thread every
            :data:`~qops.simulation.worker.POLL_S` while a circuit is simulated (the server
            publishes its heartbeat from it).
    """

    def __init__(
        self,
        config: BackendConfig,
        calibration: CalibrationSource,
        state_store: BackendStateStore,
        worker: SimulationWorker | None = None,
        keepalive: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.calibration = calibration
        self.state_store = state_store
        self._owns_worker = worker is None
        self.worker = worker or SimulationWorker(seed=config.execution.seed)
        self.session: Session | None = None
        self._couplings = frozenset((min(a, b), max(a, b)) for a, b in config.topology)
        self._schemas: ProtocolSchemas = protocol_schemas()
        self._noise: tuple[Hashable, ChipNoise] | None = None
        self._keepalive = keepalive

    def answer(self, request: JsonObject, session_id: str) -> bytes | None:
        """Answer a schema-checked job request: the reply's payload, encoded, or ``None``.

        Raises:
            JobRefusedError: The request cannot be served (no session, another session, the
                chip calibrating or OFFLINE, a circuit that does not parse, too many shots).
            CalibrationUnavailableError: The chip's calibration (its noise) cannot be read.
            StateStoreError: The chip's lease cannot be taken or given back.
            ProtocolError: The reply built does not match its schema (a bug).
        """
        command = Command(str(request["command"]))
        if command is Command.INITIALIZE:
            self._initialize(session_id)
            return None
        if command is Command.TERMINATE:
            self._terminate(session_id)
            return None
        payload = request.get("payload")
        assert isinstance(payload, dict)
        result = self._execute(session_id, payload)
        reply: JsonObject = {"status": "success", "session_id": session_id, "payload": result}
        self._schemas.check("execute/reply_success", reply, "outgoing execute reply")
        return encode(result)

    def _initialize(self, session_id: str) -> None:
        session = self.session
        if session is not None:
            if session.session_id == session_id:
                session.last_request = time.monotonic()
                logger.info("initialize repeated for open session %s", session_id)
                return
            raise JobRefusedError(
                Command.INITIALIZE,
                f"chip {self.config.chip!r} is initialized for session {session.session_id}; "
                "terminate it first",
            )
        try:
            lease = lock_chip(
                self.state_store,
                self.config.chip,
                BackendState.EXECUTING,
                holder=f"2200 session {session_id}",
                lease_s=self.config.execution.lease_s,
                refuse_offline=True,
            )
        except (ChipInUseError, ChipBusyError) as e:
            raise JobRefusedError(Command.INITIALIZE, str(e)) from e
        try:
            self.worker.start()
        except BaseException:
            # No session without a simulator: give the chip back, the server reports why.
            lease.release()
            raise
        self.session = Session(session_id=session_id, lease=lease)
        logger.info("chip %s initialized for session %s", self.config.chip, session_id)

    def _terminate(self, session_id: str) -> None:
        session = self.session
        if session is None:
            logger.info("terminate of session %s: no session is open", session_id)
            return
        if session.session_id != session_id:
            raise JobRefusedError(
                Command.TERMINATE,
                f"session {session_id} is not initialized; chip {self.config.chip!r} is "
                f"initialized for session {session.session_id}",
            )
        self._end(session, "terminated")

    def _end(self, session: Session, how: str) -> None:
        self.session = None
        session.lease.release()
        logger.info(
            "session %s of chip %s %s after %d jobs",
            session.session_id,
            self.config.chip,
            how,
            session.jobs,
        )

    def _execute(self, session_id: str, payload: JsonObject) -> JsonObject:
        session = self.session
        if session is None or session.session_id != session_id:
            held = (
                f"; the chip is initialized for session {session.session_id}"
                if session is not None
                else ""
            )
            raise JobRefusedError(
                Command.EXECUTE,
                f"session {session_id} is not initialized (send initialize first){held}",
            )
        session.last_request = time.monotonic()
        job_id = int(_number(payload["job_id"]))
        shots = int(_number(payload["number_of_shots"]))
        limit = self.config.execution.max_shots
        if shots > limit:
            raise JobRefusedError(
                Command.EXECUTE, f"job {job_id}: {shots} shots exceed the limit of {limit}"
            )
        asked_raw = bool(payload.get("include_raw_data", False))
        raw = asked_raw and self.config.supports_raw_data
        if asked_raw and not raw:
            logger.info("job %d asked for raw data; supports_raw_data is false", job_id)
        try:
            program = parse_circuit(str(payload["circuit"]), self.config.nqubits, self._couplings)
            noise = self._current_noise()
            results = self.worker.run(program, shots, noise, raw, while_waiting=self._keepalive)
        except (CircuitError, NoiseParameterError, SimulatorCrashedError, ValueError) as e:
            raise JobRefusedError(Command.EXECUTE, f"job {job_id}: {e}") from e
        session.jobs += 1
        return {"job_id": job_id, "results": results.counts, "raw_data": results.raw_data or []}

    def _current_noise(self) -> ChipNoise:
        """The noise of the chip's current calibration, rebuilt only when it changed."""
        chip = self.config.chip
        version = self.calibration.parameters_version(chip)
        cached = self._noise
        if version is not None and cached is not None and cached[0] == version:
            return cached[1]
        noise = chip_noise(self.calibration.current_parameters(chip), version=repr(version))
        if version is not None:
            self._noise = (version, noise)
        return noise

    def expire_idle(self) -> None:
        """Terminate the open session if it had no request for ``session_timeout_s``."""
        session = self.session
        if session is None:
            return
        idle = time.monotonic() - session.last_request
        if idle >= self.config.execution.session_timeout_s:
            logger.warning(
                "session %s had no request for %.0f s: terminating it", session.session_id, idle
            )
            try:
                self._end(session, "timed out")
            except StateStoreError as e:
                logger.warning("releasing the lease of session %s: %s", session.session_id, e)

    def close(self) -> None:
        """Release the open session's lease (the server is shutting down)."""
        if self._owns_worker:
            self.worker.close()
        session = self.session
        if session is not None:
            try:
                self._end(session, "ended by shutdown")
            except StateStoreError as e:
                logger.warning("releasing the lease of session %s: %s", session.session_id, e)


def _number(value: object) -> float:
    """A schema-checked integer field (JSON may write it as ``1.0``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError("execute request", f"expected an integer, found {value!r}")
    return value
