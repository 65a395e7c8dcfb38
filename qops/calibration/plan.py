"""Planning a calibration run: targets, the order of steps, and what a failure skips."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from qops.backend.config import BackendConfig, load_backend_config
from qops.chip.errors import UnknownQubitError
from qops.chip.instrument import pair_id, qubit_id
from qops.chip.steps import CALIBRATION_STEPS, Scope, StepName, StepSpec
from qops.provenance.service import delta_of, values_equal


class ChipSpec(BaseModel):
    """The structure of the chip a calibration measures (from the backend configuration).

    Attributes:
        chip_id: The chip, as recorded in provenance and served by the backend.
        n_qubits: Number of qubits, ``Q0`` to ``Q{n-1}``.
        topology: Coupled pairs as qubit indices.
        seed: Seed of the simulated chip: the same seed gives the same chip and data.
    """

    model_config = ConfigDict(frozen=True)

    chip_id: str = Field(min_length=1)
    n_qubits: int = Field(ge=1)
    topology: tuple[tuple[int, int], ...] = ()
    seed: int = 1234

    @classmethod
    def from_backend(cls, config: BackendConfig, seed: int) -> ChipSpec:
        """The chip a backend configuration describes."""
        return cls(
            chip_id=config.chip,
            n_qubits=config.nqubits,
            topology=tuple((a, b) for a, b in config.topology),
            seed=seed,
        )

    @classmethod
    def from_file(cls, path: Path, seed: int) -> ChipSpec:
        """The chip of the backend configuration YAML at ``path``.

        Raises:
            qops.protocol.errors.BackendConfigError: The file is missing or invalid.
        """
        return cls.from_backend(load_backend_config(path), seed)

    @property
    def qubits(self) -> list[str]:
        """All qubit ids of the chip."""
        return [qubit_id(i) for i in range(self.n_qubits)]

    @property
    def pairs(self) -> list[str]:
        """All coupled pair ids of the chip, ``"Q0-Q1"`` style."""
        return [pair_id(a, b) for a, b in self.topology]


class StepOutcome(StrEnum):
    """How one step ended for one target."""

    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


class StepResult(BaseModel):
    """One step on one target."""

    step: StepName
    target: str
    outcome: StepOutcome
    reason: str = ""
    versions: dict[str, int] = Field(default_factory=dict)
    used: dict[str, int] = Field(default_factory=dict)


def select_targets(chip: ChipSpec, qubits: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Return the qubits and coupled pairs to calibrate.

    Pairs are those of the topology whose two qubits are both selected.

    Raises:
        UnknownQubitError: A requested qubit is not on the chip.
    """
    known = chip.qubits
    selected = list(dict.fromkeys(q.strip().upper() for q in qubits)) if qubits else known
    for qid in selected:
        if qid not in known:
            raise UnknownQubitError(chip.chip_id, qid, known)
    pairs = [p for p in chip.pairs if all(q in selected for q in p.split("-"))]
    return selected, pairs


def targets_of(spec: StepSpec, qubits: Sequence[str], pairs: Sequence[str]) -> list[str]:
    """The targets a step runs on."""
    return list(pairs) if spec.scope is Scope.PAIR else list(qubits)


def blocking_step(
    spec: StepSpec, target: str, results: Mapping[tuple[StepName, str], StepResult]
) -> StepResult | None:
    """The prerequisite of ``spec`` on ``target`` that did not complete, if any.

    A pair step needs its prerequisites on both qubits of the pair.
    """
    for qubit in target.split("-"):
        for before in spec.after:
            done = results.get((before, qubit))
            if done is None or done.outcome is not StepOutcome.COMPLETED:
                return done or StepResult(
                    step=before, target=qubit, outcome=StepOutcome.SKIPPED, reason="not run"
                )
    return None


def ordered_steps() -> list[StepSpec]:
    """The calibration steps in dependency order."""
    return list(CALIBRATION_STEPS.values())


class ParameterChange(BaseModel):
    """A parameter value before and after a calibration run."""

    parameter_name: str
    qid: str
    unit: str = ""
    before: float | int | str | None = None
    after: float | int | str | None = None
    delta: float | None = None
    delta_percent: float | None = None


def changes_between(
    before: Iterable[tuple[str, str, float | int | str, str]],
    after: Iterable[tuple[str, str, float | int | str, str]],
) -> list[ParameterChange]:
    """Compare ``(parameter_name, qid, value, unit)`` snapshots; only changed entries.

    ``delta`` is ``after - before`` for numbers; ``delta_percent`` relative to ``|before|``.
    """
    old = {(name, qid): value for name, qid, value, _ in before}
    changes: list[ParameterChange] = []
    for name, qid, value, unit in after:
        previous = old.get((name, qid))
        if previous is not None and values_equal(previous, value, rel_tol=0.0):
            continue
        delta, delta_percent = delta_of(previous, value) if previous is not None else (None, None)
        changes.append(
            ParameterChange(
                parameter_name=name,
                qid=qid,
                unit=unit,
                before=previous,
                after=value,
                delta=delta,
                delta_percent=delta_percent,
            )
        )
    return sorted(changes, key=lambda c: (c.qid, c.parameter_name))


class CalibrationReport(BaseModel):
    """What one ``calibrate`` run did."""

    execution_id: str
    project_id: str
    chip_id: str
    epoch: int
    database_path: str
    qubits: list[str]
    pairs: list[str]
    steps: list[StepResult]
    changes: list[ParameterChange]

    @property
    def failed(self) -> list[StepResult]:
        """Steps that failed."""
        return [s for s in self.steps if s.outcome is StepOutcome.FAILED]

    @property
    def skipped(self) -> list[StepResult]:
        """Steps skipped because a prerequisite did not complete."""
        return [s for s in self.steps if s.outcome is StepOutcome.SKIPPED]
