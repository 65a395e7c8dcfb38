"""Persistent per-qubit offsets of the simulated chip's hidden values (fault injection).

Every process rebuilds the simulated chip from ``(seed, epoch)``, so a value shifted with
:meth:`~qops.chip.instrument.SimulatedChip.shift_truth` lasts only in the process that
shifted it. An offset stored here, in one JSON file per chip under the data directory
(``<data_dir>/chip/<chip_id>.offsets.json``), is added to the hidden values by every
process that builds the chip (see :func:`apply_offsets`), so a drift injected by
``qops chip drift`` is what the next calibration, check or maintenance run measures.

Offsets add to the drifted value: ``qubit_frequency: 2e6`` moves the qubit 2 MHz up at
every epoch. Writes go through a temporary file and a rename, so a reader never sees half
a file.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from qops.chip.errors import OffsetError
from qops.chip.instrument import SimulatedChip
from qops.chip.models import QubitTruth

ChipOffsets = dict[str, dict[str, float]]
"""Offsets of one chip: qubit id -> hidden value name -> amount added (its unit)."""

OFFSET_FIELDS = tuple(QubitTruth.model_fields)
"""The hidden values an offset may shift (fields of :class:`QubitTruth`)."""

_QUBIT = re.compile(r"^Q\d+$")


def offsets_path(data_dir: Path, chip_id: str) -> Path:
    """The file holding the offsets of ``chip_id`` under ``data_dir``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", chip_id)
    return data_dir / "chip" / f"{safe}.offsets.json"


def _checked(chip_id: str, raw: object) -> ChipOffsets:
    if not isinstance(raw, Mapping):
        raise OffsetError(chip_id, f"expected a mapping of qubits, found {type(raw).__name__}")
    offsets: ChipOffsets = {}
    for qid, changes in raw.items():
        if not isinstance(qid, str) or not _QUBIT.match(qid):
            raise OffsetError(chip_id, f"{qid!r} is not a qubit id like Q0")
        if not isinstance(changes, Mapping):
            raise OffsetError(chip_id, f"offsets of {qid} must be a mapping")
        for name, value in changes.items():
            if name not in OFFSET_FIELDS:
                raise OffsetError(
                    chip_id, f"{name!r} is not a hidden value (one of {', '.join(OFFSET_FIELDS)})"
                )
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise OffsetError(chip_id, f"{name} of {qid} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise OffsetError(chip_id, f"{name} of {qid} must be finite, got {value}")
        offsets[qid] = {str(n): float(v) for n, v in changes.items()}
    return offsets


class OffsetStore:
    """The chip offsets kept under one data directory.

    Args:
        data_dir: The data directory (``QOPS_DATA_DIR``).
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def load(self, chip_id: str) -> ChipOffsets:
        """The offsets of ``chip_id``; empty if none were stored.

        Raises:
            OffsetError: The file cannot be read or holds something else than offsets.
        """
        path = offsets_path(self.data_dir, chip_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise OffsetError(chip_id, f"cannot read {path}: {e}") from e
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise OffsetError(chip_id, f"{path} is not JSON: {e}") from e
        return _checked(chip_id, raw)

    def add(self, chip_id: str, qid: str, changes: Mapping[str, float]) -> ChipOffsets:
        """Add ``changes`` to the stored offsets of qubit ``qid`` (they accumulate).

        Returns:
            The chip's offsets after the change.

        Raises:
            OffsetError: A name is not a hidden value, a value is not a finite number, the
                qubit id is malformed, or the file cannot be written (the stored offsets
                are then unchanged).
        """
        offsets = self.load(chip_id)
        merged = dict(offsets.get(qid, {}))
        for name, value in _checked(chip_id, {qid: dict(changes)})[qid].items():
            merged[name] = merged.get(name, 0.0) + value
        offsets[qid] = merged
        self._write(chip_id, offsets)
        return offsets

    def clear(self, chip_id: str, qid: str | None = None) -> ChipOffsets:
        """Remove the offsets of qubit ``qid`` (all of the chip's if ``None``).

        Raises:
            OffsetError: The file cannot be read or written.
        """
        offsets = self.load(chip_id) if qid is not None else {}
        offsets.pop(qid or "", None)
        self._write(chip_id, offsets)
        return offsets

    def _write(self, chip_id: str, offsets: ChipOffsets) -> None:
        path = offsets_path(self.data_dir, chip_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(offsets, file, indent=2, sort_keys=True)
            os.replace(temporary, path)
        except OSError as e:
            raise OffsetError(chip_id, f"cannot write {path}: {e}") from e


def apply_offsets(chip: SimulatedChip, offsets: Mapping[str, Mapping[str, float]]) -> None:
    """Add ``offsets`` to the chip's current hidden values.

    Raises:
        UnknownQubitError: A qubit of ``offsets`` is not on the chip.
        OffsetError: An offset would make a hidden value invalid (a T1 below zero, a
            fidelity above 1).
    """
    for qid, changes in offsets.items():
        truth = chip.truth(qid)
        shifted = {name: getattr(truth, name) + value for name, value in changes.items()}
        try:
            QubitTruth.model_validate({**truth.model_dump(), **shifted})
        except ValidationError as e:
            problem = "; ".join(f"{err['loc'][0]}: {err['msg']}" for err in e.errors())
            raise OffsetError(chip.name, f"offsets of {qid} make it invalid: {problem}") from e
        chip.shift_truth(qid, **shifted)
