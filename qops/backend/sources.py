"""Where 2300's get_dynamic answer comes from: the chip's current calibration parameters.

The server reads calibration values through :class:`CalibrationSource`, a protocol it owns;
:class:`InMemoryCalibrationSource` holds values given at start-up (from the backend
configuration), :class:`qops.backend.provenance_source.ProvenanceCalibrationSource`
reads the provenance store, and :class:`MergedCalibrationSource` layers sources (the
provenance store over the configured values, as ``qops backend serve`` does).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Hashable, Iterable, Mapping
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from qops.protocol.messages import JsonObject

logger = logging.getLogger(__name__)

QUBIT_LABEL = "qubit"
PAIR_LABELS = ("qubit1", "qubit2")

_QUBIT = re.compile(r"^[Qq](\d+)$")
_PAIR = re.compile(r"^[Qq](\d+)-[Qq](\d+)$")


class CalibrationValue(BaseModel):
    """The current value of one calibration parameter of one qubit or qubit pair."""

    model_config = ConfigDict(frozen=True)

    parameter_name: str = Field(min_length=1, description="e.g. t1, t2_star, cnot_fidelity.")
    qid: str = Field(description='A qubit ("Q0") or a qubit pair ("Q0-Q1").')
    value: float | None = Field(
        allow_inf_nan=False, description="The value in the parameter's unit; None: no value."
    )


@runtime_checkable
class CalibrationSource(Protocol):
    """Current calibration parameter values of a chip, and a stamp of when they changed.

    The server builds, checks and encodes a chip's get_dynamic payload once per
    :meth:`parameters_version` instead of on every request.
    """

    def current_parameters(self, chip_id: str) -> list[CalibrationValue]:
        """Return the current value of every parameter of every qubit and pair of ``chip_id``.

        Returns an empty list for a chip it knows nothing about.
        """
        ...

    def parameters_version(self, chip_id: str) -> Hashable:
        """Return a value that changes whenever ``current_parameters(chip_id)`` would.

        ``None`` means "unknown": the server then rebuilds the payload for every request.
        """
        ...


class InMemoryCalibrationSource:
    """Calibration values held in memory, per chip; safe to update from other threads.

    Args:
        values: Initial values per chip id.
    """

    def __init__(self, values: Mapping[str, Iterable[CalibrationValue]] | None = None) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, list[CalibrationValue]] = {
            chip: list(chip_values) for chip, chip_values in (values or {}).items()
        }
        self._versions: dict[str, int] = {}

    def current_parameters(self, chip_id: str) -> list[CalibrationValue]:
        """Return the values of ``chip_id`` (empty if unknown)."""
        with self._lock:
            return list(self._values.get(chip_id, ()))

    def set_parameters(self, chip_id: str, values: Iterable[CalibrationValue]) -> None:
        """Replace every value of ``chip_id``."""
        replacement = list(values)
        with self._lock:
            self._values[chip_id] = replacement
            self._versions[chip_id] = self._versions.get(chip_id, 0) + 1

    def parameters_version(self, chip_id: str) -> Hashable:
        """Return how many times ``chip_id``'s values were replaced."""
        with self._lock:
            return self._versions.get(chip_id, 0)


class MergedCalibrationSource:
    """The values of several sources; for each parameter of a qubit or pair the first wins.

    Args:
        sources: Highest priority first, e.g. the provenance store, then the values of the
            backend configuration as a fallback for parameters never calibrated.
    """

    def __init__(self, *sources: CalibrationSource) -> None:
        self.sources = sources

    def current_parameters(self, chip_id: str) -> list[CalibrationValue]:
        """Return every source's values, dropping those an earlier source has."""
        merged: dict[tuple[str, tuple[str, ...] | str], CalibrationValue] = {}
        for source in self.sources:
            for value in source.current_parameters(chip_id):
                key = (value.parameter_name, qubit_labels(value.qid) or value.qid)
                merged.setdefault(key, value)
        return list(merged.values())

    def parameters_version(self, chip_id: str) -> Hashable:
        """Return the tuple of the sources' versions; ``None`` if one of them has none."""
        versions: list[Hashable] = []
        for source in self.sources:
            version = source.parameters_version(chip_id)
            if version is None:
                return None
            versions.append(version)
        return tuple(versions)


def qubit_labels(qid: str) -> tuple[str, ...] | None:
    """Return the label values of a qid: ``"Q0"`` → ``("q0",)``, ``"Q0-Q1"`` → ``("q0", "q1")``.

    Returns ``None`` for a qid of neither form.
    """
    match = _QUBIT.match(qid)
    if match:
        return (f"q{int(match[1])}",)
    match = _PAIR.match(qid)
    if match:
        return (f"q{int(match[1])}", f"q{int(match[2])}")
    return None


def dynamic_payload(
    values: Iterable[CalibrationValue], extra: Mapping[str, float] | None = None
) -> JsonObject:
    """Build a get_dynamic payload from calibration values and extra plain numbers.

    A per-qubit parameter becomes ``{"<name>": {"__labels__": ["qubit"], "q0": v}}``, a pair
    parameter ``{"<name>": {"__labels__": ["qubit1", "qubit2"], "q0": {"q1": v}}}``. Values
    with an unknown qid form, or whose name is already used with the other form or by an
    extra number, are left out with a logged reason.
    """
    payload: JsonObject = {}
    trees: dict[str, dict[str, object]] = {}
    arity: dict[str, int] = {}
    for item in values:
        labels = qubit_labels(item.qid)
        name = item.parameter_name
        if labels is None:
            logger.warning(
                "calibration value %s of %r left out: qid is not Qn or Qn-Qm", name, item.qid
            )
            continue
        known = arity.setdefault(name, len(labels))
        if known != len(labels):
            logger.warning(
                "calibration value %s of %s left out: %s is already a %s parameter",
                name,
                item.qid,
                name,
                "per-qubit" if known == 1 else "pair",
            )
            continue
        tree = trees.get(name)
        if tree is None:
            tree = {"__labels__": [QUBIT_LABEL] if len(labels) == 1 else list(PAIR_LABELS)}
            trees[name] = tree
        if len(labels) == 1:
            tree[labels[0]] = item.value
        else:
            inner = tree.setdefault(labels[0], {})
            assert isinstance(inner, dict)
            inner[labels[1]] = item.value
    payload.update(trees)
    for name, number in (extra or {}).items():
        if name in payload:
            logger.warning("extra metric %s left out: a calibration parameter has that name", name)
            continue
        payload[name] = number
    return payload
