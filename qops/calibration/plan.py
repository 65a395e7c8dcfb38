"""Planning a calibration run: the chip, its targets, the order of steps, what a failure skips."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from qops.backend.config import BackendConfig, load_backend_config
from qops.calibration.graph import CALIBRATION_STEPS, Scope, StepName, StepSpec
from qops.chip.errors import UnknownQubitError
from qops.chip.instrument import pair_id, qubit_id
from qops.chip.offsets import OffsetStore


class ChipSpec(BaseModel):
    """The structure of the chip a calibration measures (from the backend configuration).

    Attributes:
        chip_id: The chip, as recorded in provenance and served by the backend.
        n_qubits: Number of qubits, ``Q0`` to ``Q{n-1}``.
        topology: Coupled pairs as qubit indices.
        seed: Seed of the simulated chip: the same seed gives the same chip and data.
        offsets: Injected offsets of the simulated chip's hidden values, by qubit and value
            name (see :mod:`qops.chip.offsets`); read from the data directory by
            :func:`with_offsets`.
    """

    model_config = ConfigDict(frozen=True)

    chip_id: str = Field(min_length=1)
    n_qubits: int = Field(ge=1)
    topology: tuple[tuple[int, int], ...] = ()
    seed: int = 1234
    offsets: dict[str, dict[str, float]] = Field(default_factory=dict)

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
            qops.backend.errors.BackendConfigError: The file is missing or invalid.
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


def resolve_chip_spec(
    backend_config: Path | None, chip_id: str | None, seed: int, default_chip_id: str
) -> ChipSpec:
    """The chip a calibration run measures.

    Args:
        backend_config: Backend YAML giving the chip's qubits and topology; ``None`` for a
            two-qubit chip with one coupler.
        chip_id: The chip id; default the backend configuration's, else ``default_chip_id``.
        seed: Seed of the simulated chip.
        default_chip_id: The chip id without a configuration or ``chip_id`` (e.g.
            ``ProvenanceSettings().chip_id``).

    Raises:
        qops.backend.errors.BackendConfigError: ``backend_config`` is missing or invalid.
    """
    if backend_config:
        spec = ChipSpec.from_file(backend_config, seed)
        return spec.model_copy(update={"chip_id": chip_id}) if chip_id else spec
    return ChipSpec(chip_id=chip_id or default_chip_id, n_qubits=2, topology=((0, 1),), seed=seed)


def with_offsets(spec: ChipSpec, data_dir: Path) -> ChipSpec:
    """``spec`` with the chip offsets stored under ``data_dir`` (``qops chip drift``).

    Raises:
        OffsetError: The stored offsets cannot be read.
    """
    return spec.model_copy(update={"offsets": OffsetStore(data_dir).load(spec.chip_id)})


def default_database_path(data_dir: Path, chip_id: str) -> Path:
    """The QCoDeS database a chip's calibration measurements go to by default."""
    return data_dir / "calibration" / f"{chip_id}.db"


DEFAULT_SEED = 1234
"""Seed of the simulated chip when a run names none."""


@dataclass(frozen=True)
class RunTarget:
    """What one run on a chip (a calibration, a maintenance) works on.

    Attributes:
        project_id: The provenance project.
        spec: The chip, with its stored drift offsets.
        qubits: The selected qubits.
        pairs: The coupled pairs whose two qubits are selected.
        database: The QCoDeS database the run's measurements go to.
    """

    project_id: str
    spec: ChipSpec
    qubits: list[str]
    pairs: list[str]
    database: Path


def plan_run(
    data_dir: Path,
    default_project_id: str,
    default_chip_id: str,
    *,
    project_id: str | None,
    chip_id: str | None,
    backend_config: str | None,
    seed: int,
    qubits: Sequence[str] | None,
    database_path: str | None,
) -> RunTarget:
    """Resolve a run's project, chip (with the offsets under ``data_dir``), targets, database.

    Raises:
        qops.backend.errors.BackendConfigError: ``backend_config`` is missing or invalid.
        OffsetError: The stored offsets cannot be read.
        UnknownQubitError: A requested qubit is not on the chip.
    """
    spec = resolve_chip_spec(
        Path(backend_config) if backend_config else None, chip_id, seed, default_chip_id
    )
    spec = with_offsets(spec, data_dir)  # drift injected by `qops chip drift`
    selected, pairs = select_targets(spec, qubits)
    database = (
        Path(database_path) if database_path else default_database_path(data_dir, spec.chip_id)
    )
    return RunTarget(project_id or default_project_id, spec, selected, pairs, database)


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
