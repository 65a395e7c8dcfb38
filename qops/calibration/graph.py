"""The calibration steps as data: what each needs, what it produces, what runs before it.

This module is the one place the calibration dependency graph is written down. Callers
derive from it the declarations of their tasks (inputs and outputs for provenance), the
order of steps per qubit, and which input keys a step expects.

Input keys: a per-qubit step takes plain parameter names (``qubit_frequency``); a pair step
takes each input once per qubit of the pair as ``<parameter_name>:<qid>``
(``qubit_frequency:Q0``), the same ``name:qid`` form the provenance entity ids start with.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field


class StepName(StrEnum):
    """The calibration steps, named as their tasks are."""

    CHECK_FREQUENCY = "CheckFrequency"
    CHECK_RABI = "CheckRabi"
    CHECK_T1 = "CheckT1"
    CHECK_RAMSEY = "CheckRamsey"
    CHECK_T2_ECHO = "CheckT2Echo"
    CHECK_READOUT_FIDELITY = "CheckReadoutFidelity"
    CHECK_CZ = "CheckCZ"


class Scope(StrEnum):
    """What a step calibrates: one qubit, or one coupled pair."""

    QUBIT = "qubit"
    PAIR = "pair"


PARAMETER_UNITS: Mapping[str, str] = MappingProxyType(
    {
        "qubit_frequency": "Hz",
        "readout_frequency": "Hz",
        "pi_amplitude": "V",
        "t1": "s",
        "t2_star": "s",
        "t2_echo": "s",
        "readout_fidelity": "",
        "cz_fidelity": "",
    }
)
"""Every calibrated parameter and its unit (``""`` for dimensionless, as in
:class:`qops.provenance.models.Measured`)."""


class StepSpec(BaseModel):
    """One calibration step of the dependency graph.

    Attributes:
        name: The step.
        scope: Whether it calibrates a qubit or a coupled pair.
        inputs: Parameter names it reads. For a pair step, each is read for both qubits.
        outputs: Parameter names it produces, for its qubit or pair.
        after: Steps that must have run on the same qubit (for a pair step: on both
            qubits of the pair) before this one, because they produce or refine its inputs.
    """

    model_config = ConfigDict(frozen=True)

    name: StepName
    scope: Scope
    inputs: tuple[str, ...] = Field(default=())
    outputs: tuple[str, ...]
    after: tuple[StepName, ...] = Field(default=())


_STEPS = (
    StepSpec(
        name=StepName.CHECK_FREQUENCY,
        scope=Scope.QUBIT,
        outputs=("qubit_frequency", "readout_frequency"),
    ),
    StepSpec(
        name=StepName.CHECK_RABI,
        scope=Scope.QUBIT,
        inputs=("qubit_frequency",),
        outputs=("pi_amplitude",),
        after=(StepName.CHECK_FREQUENCY,),
    ),
    StepSpec(
        name=StepName.CHECK_T1,
        scope=Scope.QUBIT,
        inputs=("qubit_frequency", "pi_amplitude"),
        outputs=("t1",),
        after=(StepName.CHECK_RABI,),
    ),
    StepSpec(
        name=StepName.CHECK_RAMSEY,
        scope=Scope.QUBIT,
        inputs=("qubit_frequency", "pi_amplitude"),
        outputs=("t2_star", "qubit_frequency"),
        after=(StepName.CHECK_RABI,),
    ),
    StepSpec(
        name=StepName.CHECK_T2_ECHO,
        scope=Scope.QUBIT,
        inputs=("qubit_frequency", "pi_amplitude"),
        outputs=("t2_echo",),
        after=(StepName.CHECK_RAMSEY,),
    ),
    StepSpec(
        name=StepName.CHECK_READOUT_FIDELITY,
        scope=Scope.QUBIT,
        inputs=("qubit_frequency", "readout_frequency", "pi_amplitude"),
        outputs=("readout_fidelity",),
        after=(StepName.CHECK_RAMSEY,),
    ),
    StepSpec(
        name=StepName.CHECK_CZ,
        scope=Scope.PAIR,
        inputs=("qubit_frequency", "pi_amplitude"),
        outputs=("cz_fidelity",),
        after=(StepName.CHECK_RAMSEY,),
    ),
)

CALIBRATION_STEPS: Mapping[StepName, StepSpec] = MappingProxyType({s.name: s for s in _STEPS})
"""The dependency graph, in an order that respects ``after`` (a topological order)."""


def input_key(parameter_name: str, qid: str) -> str:
    """Return the input key of a pair step for ``parameter_name`` of qubit ``qid``."""
    return f"{parameter_name}:{qid}"


def required_inputs(step: StepName, qubits: tuple[str, ...]) -> tuple[str, ...]:
    """Return the input keys ``step`` expects for a target made of ``qubits``.

    Args:
        step: The calibration step.
        qubits: The qubit ids of the target: one for a qubit step, two for a pair step.

    Returns:
        Plain parameter names for a qubit step; ``name:qid`` keys for a pair step.
    """
    spec = CALIBRATION_STEPS[step]
    if spec.scope is Scope.QUBIT:
        return spec.inputs
    return tuple(input_key(name, qid) for qid in qubits for name in spec.inputs)


def producers(parameter_name: str) -> tuple[StepName, ...]:
    """Return the steps that produce ``parameter_name``, in graph order."""
    return tuple(s.name for s in _STEPS if parameter_name in s.outputs)
