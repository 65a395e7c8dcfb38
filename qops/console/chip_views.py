"""What the chip pages show: the current parameters per qubit and pair, and the state.

Pure functions over the values the 2300 backend's get_dynamic serves
(:class:`~qops.backend.sources.CalibrationValue`) and the current parameter versions they
come from (for units and links).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qops.backend.sources import CalibrationValue, qubit_labels
from qops.backend.state import StateMarks, resolve_state
from qops.console.provenance_views import entity_url, format_value, parameter_url
from qops.provenance.models import ParameterVersion


@dataclass(frozen=True)
class Cell:
    """One parameter value of one qubit or pair."""

    value: str
    unit: str
    history_url: str
    entity_url: str | None


@dataclass(frozen=True)
class ParameterTable:
    """Parameters as columns, qubits (or pairs) as rows; ``None`` where there is no value."""

    parameters: list[str]
    rows: list[tuple[str, list[Cell | None]]]


@dataclass(frozen=True)
class ChipParameters:
    """The current parameters of a chip, split into qubits and pairs."""

    qubits: ParameterTable
    pairs: ParameterTable
    other: list[CalibrationValue]
    """Values whose qid is neither ``Qn`` nor ``Qn-Qm`` (get_dynamic leaves them out)."""


def _natural(text: str) -> tuple[object, ...]:
    """Sort key putting ``Q2`` before ``Q10``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def _table(
    values: Sequence[CalibrationValue], versions: dict[tuple[str, str], ParameterVersion]
) -> ParameterTable:
    parameters = sorted({v.parameter_name for v in values})
    by_qid: dict[str, dict[str, Cell]] = {}
    for value in values:
        version = versions.get((value.parameter_name, value.qid))
        by_qid.setdefault(value.qid, {})[value.parameter_name] = Cell(
            value=format_value(value.value),
            unit=version.unit if version is not None else "",
            history_url=parameter_url(
                value.parameter_name, value.qid, None if version is None else version.chip_id
            ),
            entity_url=None if version is None else entity_url(version.entity_id),
        )
    rows = [
        (qid, [cells.get(name) for name in parameters])
        for qid, cells in sorted(by_qid.items(), key=lambda item: _natural(item[0]))
    ]
    return ParameterTable(parameters=parameters, rows=rows)


def chip_parameters(
    values: Sequence[CalibrationValue], versions: Sequence[ParameterVersion]
) -> ChipParameters:
    """Tables of the current ``values`` (as get_dynamic serves them) per qubit and per pair.

    ``versions`` are the chip's current parameter versions: they give each value its unit
    and the link to its version; a value without one (from the backend configuration) has
    no version link.
    """
    by_key = {(v.parameter_name, v.qid): v for v in versions}
    qubits, pairs, other = [], [], []
    for value in values:
        labels = qubit_labels(value.qid)
        if labels is None:
            other.append(value)
        elif len(labels) == 1:
            qubits.append(value)
        else:
            pairs.append(value)
    return ChipParameters(qubits=_table(qubits, by_key), pairs=_table(pairs, by_key), other=other)


@dataclass(frozen=True)
class StateView:
    """The backend state of a chip as the page shows it."""

    state: str
    detail: str


def state_view(marks: StateMarks | None, failure: str | None = None) -> StateView:
    """The resolved state (IDLE, CALIBRATING, EXECUTING, OFFLINE) with its reason.

    ``marks`` ``None``: no state store is configured (``UNKNOWN``); ``failure``: the store
    could not be read (``UNKNOWN`` with the reason).
    """
    if failure is not None:
        return StateView("UNKNOWN", f"the state store could not be read: {failure}")
    if marks is None:
        return StateView("UNKNOWN", "no backend state store configured")
    state = resolve_state(marks).value
    if marks.offline:
        detail = (
            f"set offline by an operator: {marks.reason}"
            if marks.reason
            else ("set offline by an operator (no reason given)")
        )
    elif state == "CALIBRATING":
        detail = "a calibration holds the chip's lease"
    elif state == "EXECUTING":
        detail = "a job is running on the chip"
    else:
        detail = "ready for jobs"
    return StateView(state, detail)
