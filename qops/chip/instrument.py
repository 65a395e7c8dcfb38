"""The simulated N-qubit transmon chip as a QCoDeS instrument.

:class:`SimulatedChip` has one :class:`SimulatedQubit` channel per qubit (``Q0``, ``Q1``,
...) and one :class:`SimulatedPair` channel per coupled pair (``Q0_Q1``, pair id
``Q0-Q1``). The channels carry the knobs a measurement sets (drive frequency and
amplitude, readout frequency), the swept quantities and the measured signals as typed
QCoDeS parameters, plus ``acquire_*`` methods that return a whole noisy trace for the
knobs' current values.

Hidden true values are drawn from the seed at construction and drift when
:meth:`SimulatedChip.drift` is called. Every random draw comes from a generator derived
from ``(seed, what is measured, on which qubit, how many times before)``, so the same seed
and the same sequence of measurements per qubit give the same data, also when qubits are
measured from several threads.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

import numpy as np
from qcodes import validators
from qcodes.instrument import Instrument, InstrumentBase, InstrumentChannel
from qcodes.parameters import Parameter

from qops.chip import physics
from qops.chip.errors import TopologyError, UnknownPairError, UnknownQubitError
from qops.chip.models import PairTruth, QubitTruth
from qops.chip.physics import FloatArray
from qops.errors import ConfigurationError

logger = logging.getLogger(__name__)

IntArray = np.ndarray[tuple[int], np.dtype[np.int64]]

PULSE_DURATION_S = 40e-9
"""Duration of every drive pulse; the π amplitude is defined for it."""
QUBIT_LINEWIDTH_HZ = 1.0e6
"""Half width of the (power-broadened) qubit line in spectroscopy."""
RESONATOR_LINEWIDTH_HZ = 0.8e6
"""Half width of the readout resonator line."""
RESONATOR_BACKGROUND_V = 10e-3
RESONATOR_DIP_V = 8e-3
DISPERSIVE_CONTRAST_V = 4e-3
SPECTROSCOPY_NOISE_V = 0.3e-3
IQ_SIGMA_V = 1e-3
DEFAULT_SHOTS = 1000

_QUBIT_ID = re.compile(r"^Q(\d+)$")


class _Stream(IntEnum):
    """The independent random streams a seed is split into."""

    TRUTH = 1
    DRIFT = 2
    NOISE = 3


class _Signal(IntEnum):
    """What is measured; each has its own noise stream per qubit."""

    RESONATOR = 1
    SPECTROSCOPY = 2
    RABI = 3
    T1 = 4
    RAMSEY = 5
    ECHO = 6
    SINGLE_SHOT = 7
    BENCHMARKING = 8


def qubit_id(index: int) -> str:
    """Return the id of qubit ``index`` (``Q0``, ``Q1``, ...)."""
    return f"Q{index}"


def drift_epoch(now: datetime, origin: datetime, interval: timedelta) -> int:
    """Return how many whole drift ``interval``s have passed from ``origin`` to ``now``.

    For building a :class:`SimulatedChip` afresh per calibration with ``epoch=``: the
    hidden values then move on with wall-clock time, the same in every process.

    Raises:
        ConfigurationError: ``interval`` is not positive, or a datetime is naive.
    """
    if interval <= timedelta(0):
        raise ConfigurationError("interval", str(interval), "a drift interval must be positive")
    for name, value in (("now", now), ("origin", origin)):
        if value.tzinfo is None:
            raise ConfigurationError(name, value.isoformat(), "needs a time zone (use UTC)")
    return max(0, (now - origin) // interval)


def pair_id(a: int, b: int) -> str:
    """Return the id of the pair of qubits ``a`` and ``b``, lower index first (``Q0-Q1``)."""
    low, high = sorted((a, b))
    return f"{qubit_id(low)}-{qubit_id(high)}"


@dataclass(frozen=True)
class IqGeometry:
    """Where the IQ clouds of a qubit's readout sit.

    Attributes:
        ground: Centre of the ground-state cloud (I, Q) in V.
        direction: Angle in rad from the ground towards the excited-state cloud.
    """

    ground: tuple[float, float]
    direction: float


class SimulatedQubit(InstrumentChannel["SimulatedChip"]):
    """One transmon qubit of a :class:`SimulatedChip`.

    Args:
        parent: The chip.
        index: The qubit's index on the chip; its name is ``Q<index>``.
        design_qubit_frequency: The designed transition frequency in Hz (public knowledge,
            where a search starts).
        design_readout_frequency: The designed readout resonator frequency in Hz.
    """

    def __init__(
        self,
        parent: SimulatedChip,
        index: int,
        design_qubit_frequency: float,
        design_readout_frequency: float,
    ) -> None:
        super().__init__(parent, qubit_id(index))
        self.index = index
        frequency = validators.Numbers(1e9, 20e9)
        self.design_qubit_frequency = _constant(
            self, "design_qubit_frequency", "Design qubit frequency", "Hz", design_qubit_frequency
        )
        self.design_readout_frequency = _constant(
            self,
            "design_readout_frequency",
            "Design readout frequency",
            "Hz",
            design_readout_frequency,
        )
        self.drive_frequency = _setting(
            self, "drive_frequency", "Drive frequency", "Hz", design_qubit_frequency, frequency
        )
        self.drive_amplitude = _setting(
            self, "drive_amplitude", "Drive pulse amplitude", "V", 0.0, validators.Numbers(0, 2)
        )
        self.readout_frequency = _setting(
            self,
            "readout_frequency",
            "Readout frequency",
            "Hz",
            design_readout_frequency,
            frequency,
        )
        self.delay = _setting(
            self, "delay", "Free evolution time", "s", 0.0, validators.Numbers(0, 10e-3)
        )
        self.prepared_state = _setting(
            self, "prepared_state", "Prepared basis state", "", 0, validators.Ints(0, 1)
        )
        self.shot = _setting(self, "shot", "Shot index", "", 0, validators.Ints(0))
        self.resonator_response = _signal(
            self, "resonator_response", "Transmitted readout amplitude", "V"
        )
        self.spectroscopy_response = _signal(
            self, "spectroscopy_response", "Readout amplitude under qubit drive", "V"
        )
        self.excited_population = _signal(
            self, "excited_population", "Excited-state population", ""
        )
        self.readout_i = _signal(self, "readout_i", "Single-shot I quadrature", "V")
        self.readout_q = _signal(self, "readout_q", "Single-shot Q quadrature", "V")

    def _knobs(self) -> tuple[float, float]:
        return float(self.drive_frequency.get()), float(self.drive_amplitude.get())

    def _population(self, p1: FloatArray, truth: QubitTruth, signal: _Signal) -> FloatArray:
        """Read out populations ``p1`` with the qubit's assignment error and shot noise."""
        rng = self.parent.noise_generator(self.index, signal)
        error = physics.readout_error(truth.readout_fidelity)
        shots = int(self.parent.shots.get())
        counts = rng.binomial(shots, error + (1 - 2 * error) * p1)
        return np.asarray(counts / shots, dtype=np.float64)

    def acquire_resonator_spectroscopy(self, frequencies: FloatArray) -> FloatArray:
        """Sweep the readout probe over ``frequencies`` (Hz); return the amplitude (V).

        The transmitted amplitude dips at the readout resonator's frequency.
        """
        truth = self.parent.truth(self.short_name)
        rng = self.parent.noise_generator(self.index, _Signal.RESONATOR)
        dip = physics.lorentzian(frequencies, truth.readout_frequency, RESONATOR_LINEWIDTH_HZ)
        clean = RESONATOR_BACKGROUND_V - RESONATOR_DIP_V * dip
        noise = rng.normal(0, SPECTROSCOPY_NOISE_V, frequencies.shape)
        return np.asarray(clean + noise, dtype=np.float64)

    def acquire_qubit_spectroscopy(self, frequencies: FloatArray) -> FloatArray:
        """Sweep a long saturating drive over ``frequencies`` (Hz); return the readout (V).

        The readout amplitude, taken at the ``readout_frequency`` knob, dips where the drive
        excites the qubit; the dip is shallower the farther the readout is from the
        resonator.
        """
        truth = self.parent.truth(self.short_name)
        rng = self.parent.noise_generator(self.index, _Signal.SPECTROSCOPY)
        readout_offset = float(self.readout_frequency.get()) - truth.readout_frequency
        readout_contrast = RESONATOR_LINEWIDTH_HZ / np.hypot(readout_offset, RESONATOR_LINEWIDTH_HZ)
        line = physics.lorentzian(frequencies, truth.qubit_frequency, QUBIT_LINEWIDTH_HZ)
        clean = RESONATOR_BACKGROUND_V - DISPERSIVE_CONTRAST_V * readout_contrast * line
        noise = rng.normal(0, SPECTROSCOPY_NOISE_V, frequencies.shape)
        return np.asarray(clean + noise, dtype=np.float64)

    def acquire_rabi(self, amplitudes: FloatArray) -> FloatArray:
        """One pulse of each of ``amplitudes`` (V) at the drive frequency knob; return P(1)."""
        truth = self.parent.truth(self.short_name)
        drive_frequency, _ = self._knobs()
        bloch = physics.pulse(
            physics.ground_states(amplitudes.size),
            amplitudes,
            drive_frequency - truth.qubit_frequency,
            truth.pi_amplitude,
            PULSE_DURATION_S,
        )
        return self._population(physics.excited_population(bloch), truth, _Signal.RABI)

    def acquire_t1(self, delays: FloatArray) -> FloatArray:
        """A π pulse (drive knobs), a wait of each of ``delays`` (s); return P(1)."""
        truth = self.parent.truth(self.short_name)
        drive_frequency, amplitude = self._knobs()
        detuning = drive_frequency - truth.qubit_frequency
        bloch = physics.pulse(
            physics.ground_states(delays.size),
            amplitude,
            detuning,
            truth.pi_amplitude,
            PULSE_DURATION_S,
        )
        bloch = physics.evolve(bloch, delays, detuning, truth.t1, truth.t2_star)
        return self._population(physics.excited_population(bloch), truth, _Signal.T1)

    def acquire_ramsey(self, delays: FloatArray) -> FloatArray:
        """Two π/2 pulses (half the amplitude knob) ``delays`` (s) apart; return P(1).

        The fringes oscillate at the drive frequency knob minus the qubit frequency.
        """
        truth = self.parent.truth(self.short_name)
        drive_frequency, amplitude = self._knobs()
        detuning = drive_frequency - truth.qubit_frequency
        half = amplitude / 2

        bloch = physics.ground_states(delays.size)
        bloch = physics.pulse(bloch, half, detuning, truth.pi_amplitude, PULSE_DURATION_S)
        bloch = physics.evolve(bloch, delays, detuning, truth.t1, truth.t2_star)
        bloch = physics.pulse(bloch, half, detuning, truth.pi_amplitude, PULSE_DURATION_S)
        return self._population(physics.excited_population(bloch), truth, _Signal.RAMSEY)

    def acquire_echo(self, delays: FloatArray) -> FloatArray:
        """A Hahn echo π/2 – t/2 – π – t/2 – π/2 for each total time in ``delays`` (s).

        The π pulse refocuses the static detuning, so the signal decays with T2 echo.
        """
        truth = self.parent.truth(self.short_name)
        drive_frequency, amplitude = self._knobs()
        detuning = drive_frequency - truth.qubit_frequency
        a_pi = truth.pi_amplitude

        bloch = physics.ground_states(delays.size)
        bloch = physics.pulse(bloch, amplitude / 2, detuning, a_pi, PULSE_DURATION_S)
        bloch = physics.evolve(bloch, delays / 2, detuning, truth.t1, truth.t2_echo)
        bloch = physics.pulse(bloch, amplitude, detuning, a_pi, PULSE_DURATION_S)
        bloch = physics.evolve(bloch, delays / 2, detuning, truth.t1, truth.t2_echo)
        bloch = physics.pulse(bloch, amplitude / 2, detuning, a_pi, PULSE_DURATION_S)
        return self._population(physics.excited_population(bloch), truth, _Signal.ECHO)

    def pi_pulse_error(self) -> float:
        """Return the population a π pulse with the current drive knobs leaves in |0>."""
        truth = self.parent.truth(self.short_name)
        drive_frequency, amplitude = self._knobs()
        bloch = physics.pulse(
            physics.ground_states(1),
            amplitude,
            drive_frequency - truth.qubit_frequency,
            truth.pi_amplitude,
            PULSE_DURATION_S,
        )
        return float(1 - physics.excited_population(bloch)[0])

    def acquire_single_shots(self, shots: int) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
        """Prepare |0> then (π pulse from the drive knobs) |1>, ``shots`` times each.

        Each shot is read out once at the ``readout_frequency`` knob; the two IQ clouds are
        Gaussian, and their distance (hence the assignment fidelity) shrinks as the readout
        moves off the resonator.

        Returns:
            Prepared state, shot index, I (V) and Q (V), each of length ``2 * shots``.
        """
        truth = self.parent.truth(self.short_name)
        geometry = self.parent.iq_geometry(self.index)
        rng = self.parent.noise_generator(self.index, _Signal.SINGLE_SHOT)
        prepared = np.repeat(np.arange(2, dtype=np.int64), shots)
        index = np.tile(np.arange(shots, dtype=np.int64), 2)
        excited_probability = np.where(prepared == 1, 1 - self.pi_pulse_error(), 0.0)
        excited = rng.random(prepared.size) < excited_probability

        readout_offset = float(self.readout_frequency.get()) - truth.readout_frequency
        match = RESONATOR_LINEWIDTH_HZ / np.hypot(readout_offset, RESONATOR_LINEWIDTH_HZ)
        distance = physics.separation_in_sigmas(truth.readout_fidelity) * IQ_SIGMA_V * match
        i = geometry.ground[0] + excited * distance * np.cos(geometry.direction)
        q = geometry.ground[1] + excited * distance * np.sin(geometry.direction)
        i = i + rng.normal(0, IQ_SIGMA_V, prepared.size)
        q = q + rng.normal(0, IQ_SIGMA_V, prepared.size)
        return prepared, index, i, q


class SimulatedPair(InstrumentChannel["SimulatedChip"]):
    """One coupled pair of a :class:`SimulatedChip`, with its CZ gate.

    Args:
        parent: The chip.
        index: Position of the pair in the chip's topology.
        first: The qubit with the lower index.
        second: The other qubit.
    """

    def __init__(
        self, parent: SimulatedChip, index: int, first: SimulatedQubit, second: SimulatedQubit
    ) -> None:
        super().__init__(parent, f"{first.short_name}_{second.short_name}")
        self.index = index
        self.pair_id = pair_id(first.index, second.index)
        self.qubits = (first, second)
        self.sequence_length = _setting(
            self,
            "sequence_length",
            "Benchmarking sequence length",
            "",
            1,
            validators.Ints(0, 100_000),
        )
        self.survival_probability = _signal(
            self, "survival_probability", "Return probability to |00>", ""
        )

    def acquire_benchmarking(self, lengths: IntArray) -> FloatArray:
        """Benchmark sequences of ``lengths`` layers, each a CZ and single-qubit Cliffords.

        The single-qubit gates use each qubit's drive knobs, so a miscalibrated π pulse or
        frequency adds error per layer on top of the CZ's own.

        Returns:
            The measured probability of returning to ``|00>`` per length.
        """
        truth = self.parent.pair_truth(self.pair_id)
        first, second = self.qubits
        rng = self.parent.noise_generator(self.index, _Signal.BENCHMARKING, pair=True)
        decay = physics.two_qubit_fidelity_to_decay(truth.cz_fidelity)
        for qubit in self.qubits:
            decay *= 1 - 2 * qubit.pi_pulse_error()
        survival = 0.25 + 0.75 * decay ** lengths.astype(np.float64)
        errors = [
            physics.readout_error(self.parent.truth(q.short_name).readout_fidelity)
            for q in (first, second)
        ]
        spam = 1 - (1 - errors[0]) * (1 - errors[1])
        measured = spam / 3 + (1 - 4 * spam / 3) * survival
        shots = int(self.parent.shots.get())
        return np.asarray(rng.binomial(shots, measured) / shots, dtype=np.float64)


class SimulatedChip(Instrument):
    """A simulated transmon chip of ``n_qubits`` qubits coupled as ``topology``.

    Args:
        name: Instrument name (unique among open QCoDeS instruments of the process).
        n_qubits: Number of qubits, at least 1.
        topology: Coupled pairs as qubit indices, e.g. ``[[0, 1], [1, 2]]`` (order inside
            a pair does not matter).
        seed: Seed of every random draw: hidden values, drift and measurement noise.
        epoch: Start this many drift steps after the seed's initial values, as if
            :meth:`drift` had been called ``epoch`` times. A process that builds the chip
            afresh for each calibration (a Prefect worker does) passes the number of
            calibration intervals elapsed, so hidden values and noise move on between
            runs while staying a function of ``(seed, epoch)``.

    Raises:
        TopologyError: ``n_qubits`` < 1, or a pair names a qubit outside the chip, a qubit
            twice, or appears twice.
        ConfigurationError: ``epoch`` is negative.
    """

    def __init__(
        self,
        name: str,
        n_qubits: int,
        topology: Sequence[Sequence[int]],
        seed: int,
        epoch: int = 0,
    ) -> None:
        pairs = _check_topology(n_qubits, topology)
        if epoch < 0:
            raise ConfigurationError("epoch", str(epoch), "a drift epoch is a count, >= 0")
        super().__init__(name)
        self.seed = seed
        self._lock = threading.Lock()
        self._epoch = 0
        self._draws: dict[tuple[int, int], int] = {}

        self.shots = _setting(
            self, "shots", "Shots per point", "", DEFAULT_SHOTS, validators.Ints(1, 1_000_000)
        )
        self.pulse_duration = _constant(
            self, "pulse_duration", "Drive pulse duration", "s", PULSE_DURATION_S
        )

        rng = self._generator(_Stream.TRUTH)
        self._qubits: dict[str, SimulatedQubit] = {}
        self._initial: dict[str, QubitTruth] = {}
        self._truth: dict[str, QubitTruth] = {}
        self._iq: dict[int, IqGeometry] = {}
        for index in range(n_qubits):
            design_f = 4.7e9 + 0.13e9 * (index % 7) + rng.uniform(-20e6, 20e6)
            design_r = 6.8e9 + 0.06e9 * (index % 15) + rng.uniform(-5e6, 5e6)
            truth = _draw_qubit_truth(rng, design_f, design_r)
            qubit = SimulatedQubit(self, index, design_f, design_r)
            self.add_submodule(qubit.short_name, qubit)
            self._qubits[qubit.short_name] = qubit
            self._initial[qubit.short_name] = truth
            self._truth[qubit.short_name] = truth
            self._iq[index] = IqGeometry(
                (rng.uniform(-5e-3, 5e-3), rng.uniform(-5e-3, 5e-3)), rng.uniform(0, 2 * np.pi)
            )

        self._pairs: dict[str, SimulatedPair] = {}
        self._pair_initial: dict[str, PairTruth] = {}
        self._pair_truth: dict[str, PairTruth] = {}
        for index, (a, b) in enumerate(pairs):
            pair = SimulatedPair(self, index, self._qubits[qubit_id(a)], self._qubits[qubit_id(b)])
            self.add_submodule(pair.short_name, pair)
            self._pairs[pair.pair_id] = pair
            truth_pair = PairTruth(cz_fidelity=rng.uniform(0.95, 0.995))
            self._pair_initial[pair.pair_id] = truth_pair
            self._pair_truth[pair.pair_id] = truth_pair
        logger.info(
            "simulated chip %s: %d qubits, %d coupled pairs, seed %d",
            name,
            n_qubits,
            len(pairs),
            seed,
        )
        self.drift(epoch)

    def get_idn(self) -> dict[str, str | None]:
        """Identify the simulated chip (no hardware to ask)."""
        return {"vendor": "qops", "model": "SimulatedChip", "serial": self.name, "firmware": None}

    @property
    def qubit_ids(self) -> tuple[str, ...]:
        """The qubit ids, in index order."""
        return tuple(self._qubits)

    @property
    def pair_ids(self) -> tuple[str, ...]:
        """The coupled pair ids, in topology order."""
        return tuple(self._pairs)

    @property
    def epoch(self) -> int:
        """How many drift steps the hidden values have taken since construction."""
        return self._epoch

    def qubit(self, qid: str) -> SimulatedQubit:
        """Return the channel of qubit ``qid``.

        Raises:
            UnknownQubitError: The chip has no such qubit.
        """
        try:
            return self._qubits[qid]
        except KeyError as e:
            raise UnknownQubitError(self.name, qid, self.qubit_ids) from e

    def pair(self, target: str) -> SimulatedPair:
        """Return the channel of the coupled pair ``target`` (``Q0-Q1`` or ``Q1-Q0``).

        Raises:
            UnknownQubitError: A qubit of the pair is not on the chip.
            UnknownPairError: The id is malformed, or the two qubits are not coupled.
        """
        parts = target.split("-")
        if len(parts) != 2 or not all(_QUBIT_ID.match(p) for p in parts):
            raise UnknownPairError(self.name, target, self.pair_ids)
        first, second = (self.qubit(p) for p in parts)
        try:
            return self._pairs[pair_id(first.index, second.index)]
        except KeyError as e:
            raise UnknownPairError(self.name, target, self.pair_ids) from e

    def truth(self, qid: str) -> QubitTruth:
        """Return the hidden true values of qubit ``qid`` now (for tests and demos)."""
        self.qubit(qid)
        with self._lock:
            return self._truth[qid]

    def shift_truth(self, qid: str, **changes: float) -> QubitTruth:
        """Set hidden values of qubit ``qid`` (fault injection for tests and demos).

        E.g. ``chip.shift_truth("Q1", qubit_frequency=5.3e9)`` moves the qubit out of the
        frequency sweep, so its ``CheckFrequency`` fit fails. Lasts until the next drift.

        Raises:
            UnknownQubitError: ``qid`` is not on the chip.
            ValueError: A name is not a field of :class:`QubitTruth`.
        """
        current = self.truth(qid)
        unknown = sorted(set(changes) - set(QubitTruth.model_fields))
        if unknown:
            raise ValueError(f"not hidden values of a qubit: {', '.join(unknown)}")
        with self._lock:
            self._truth[qid] = current.model_copy(update=changes)
            return self._truth[qid]

    def pair_truth(self, target: str) -> PairTruth:
        """Return the hidden true values of coupled pair ``target`` now."""
        pair = self.pair(target)
        with self._lock:
            return self._pair_truth[pair.pair_id]

    def iq_geometry(self, index: int) -> IqGeometry:
        """Where the IQ clouds of qubit ``index`` sit."""
        return self._iq[index]

    def drift(self, steps: int = 1) -> None:
        """Let the hidden values drift by ``steps`` steps (one per calibration interval).

        Each value takes a mean-reverting random step around its initial value: qubit
        frequency about 20 kHz, readout frequency 5 kHz, π amplitude 0.5 %, coherence
        times 5 %, fidelities a few 1e-3. The path depends only on the seed.

        Raises:
            ConfigurationError: ``steps`` is negative.
        """
        if steps < 0:
            raise ConfigurationError("steps", str(steps), "a drift is a count of steps, >= 0")
        with self._lock:
            for _ in range(steps):
                self._epoch += 1
                rng = self._generator(_Stream.DRIFT, self._epoch)
                for qid, truth in self._truth.items():
                    self._truth[qid] = _drift_qubit(rng, truth, self._initial[qid])
                for pid, pair_truth in self._pair_truth.items():
                    start = self._pair_initial[pid].cz_fidelity
                    step = _revert(pair_truth.cz_fidelity, start) + rng.normal(0, 1e-3)
                    cz = float(np.clip(pair_truth.cz_fidelity + step, 0.9, 0.999))
                    self._pair_truth[pid] = PairTruth(cz_fidelity=cz)
        if steps:
            logger.info("chip %s drifted to epoch %d", self.name, self._epoch)

    def noise_generator(self, index: int, signal: int, pair: bool = False) -> np.random.Generator:
        """Return the generator of the next acquisition of ``signal`` on qubit/pair ``index``."""
        key = (index + (1 << 20 if pair else 0), signal)
        with self._lock:
            count = self._draws.get(key, 0)
            self._draws[key] = count + 1
            epoch = self._epoch
        return self._generator(_Stream.NOISE, epoch, key[0], signal, count)

    def _generator(self, *key: int) -> np.random.Generator:
        return np.random.Generator(
            np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=key))
        )


def _setting(
    owner: InstrumentBase,
    name: str,
    label: str,
    unit: str,
    initial: float,
    vals: validators.Validator[Any],
) -> Parameter:
    """Add a knob: set by measurements, its value kept by QCoDeS and in the snapshot."""
    return owner.add_parameter(
        name,
        label=label,
        unit=unit,
        initial_value=initial,
        get_cmd=None,
        set_cmd=None,
        vals=vals,
    )


def _constant(owner: InstrumentBase, name: str, label: str, unit: str, value: float) -> Parameter:
    """Add a read-only property of the design (public knowledge, in the snapshot)."""
    return owner.add_parameter(name, label=label, unit=unit, get_cmd=lambda: value, set_cmd=False)


def _signal(owner: InstrumentBase, name: str, label: str, unit: str) -> Parameter:
    """Add a measured signal: recorded by measurements, not read point by point."""
    return owner.add_parameter(
        name, label=label, unit=unit, get_cmd=False, set_cmd=False, snapshot_value=False
    )


def _check_topology(n_qubits: int, topology: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    if n_qubits < 1:
        raise TopologyError(n_qubits, topology, "a chip needs at least one qubit")
    seen: set[tuple[int, int]] = set()
    pairs: list[tuple[int, int]] = []
    for raw in topology:
        pair = tuple(raw)
        if len(pair) != 2:
            raise TopologyError(n_qubits, topology, f"{list(pair)} is not a pair of qubits")
        a, b = int(pair[0]), int(pair[1])
        if not (0 <= a < n_qubits and 0 <= b < n_qubits):
            raise TopologyError(
                n_qubits, topology, f"{[a, b]} names a qubit outside 0..{n_qubits - 1}"
            )
        if a == b:
            raise TopologyError(n_qubits, topology, f"{[a, b]} couples a qubit to itself")
        canonical = (min(a, b), max(a, b))
        if canonical in seen:
            raise TopologyError(n_qubits, topology, f"{[a, b]} is listed twice")
        seen.add(canonical)
        pairs.append(canonical)
    return pairs


def _draw_qubit_truth(rng: np.random.Generator, design_f: float, design_r: float) -> QubitTruth:
    t1 = rng.uniform(30e-6, 90e-6)
    t2_star = rng.uniform(8e-6, 25e-6)
    t2_echo = max(rng.uniform(0.6, 1.5) * t1, 1.2 * t2_star)
    return QubitTruth(
        qubit_frequency=design_f + float(np.clip(rng.normal(0, 1.5e6), -4e6, 4e6)),
        readout_frequency=design_r + float(np.clip(rng.normal(0, 0.5e6), -2e6, 2e6)),
        pi_amplitude=rng.uniform(0.25, 0.5),
        t1=t1,
        t2_star=t2_star,
        t2_echo=t2_echo,
        readout_fidelity=rng.uniform(0.9, 0.98),
    )


_REVERSION = 0.1
"""Fraction of the distance to the initial value a drift step takes back."""


def _revert(value: float, start: float) -> float:
    return _REVERSION * (start - value)


def _drift_qubit(rng: np.random.Generator, now: QubitTruth, start: QubitTruth) -> QubitTruth:
    def log_step(value: float, initial: float, sigma: float) -> float:
        log_value = np.log(value)
        return float(np.exp(log_value + _revert(log_value, np.log(initial)) + rng.normal(0, sigma)))

    f = now.qubit_frequency
    r = now.readout_frequency
    t1 = log_step(now.t1, start.t1, 0.05)
    t2_echo = min(log_step(now.t2_echo, start.t2_echo, 0.05), 1.9 * t1)
    t2_star = min(log_step(now.t2_star, start.t2_star, 0.05), 0.95 * t2_echo)
    fidelity = now.readout_fidelity
    return QubitTruth(
        qubit_frequency=f + _revert(f, start.qubit_frequency) + rng.normal(0, 20e3),
        readout_frequency=r + _revert(r, start.readout_frequency) + rng.normal(0, 5e3),
        pi_amplitude=log_step(now.pi_amplitude, start.pi_amplitude, 0.005),
        t1=t1,
        t2_star=t2_star,
        t2_echo=t2_echo,
        readout_fidelity=float(
            np.clip(
                fidelity + _revert(fidelity, start.readout_fidelity) + rng.normal(0, 2e-3),
                0.8,
                0.995,
            )
        ),
    )
