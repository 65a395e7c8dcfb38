"""The process's simulated instruments: one chip per chip id and one ``qh_meta``.

QCoDeS instrument names are global in a process, so the calibration of a process reuses the
instruments it built: the chip of a :class:`~qops.calibration.plan.ChipSpec` at a drift
epoch, and the ``qh_meta`` tagging instrument. :func:`close_instruments` frees their names.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from qops.calibration.measurement import METADATA_INSTRUMENT_NAME, MeasurementContext
from qops.calibration.plan import ChipSpec
from qops.chip.errors import OffsetError, UnknownQubitError
from qops.chip.instrument import SimulatedChip
from qops.chip.offsets import apply_offsets
from qops.qcodes_metadata import QHMetaData

_lock = threading.Lock()
_chips: dict[str, tuple[ChipSpec, int, SimulatedChip]] = {}
_metadata: list[QHMetaData] = []


def simulated_chip(spec: ChipSpec, epoch: int) -> SimulatedChip:
    """The process's simulated chip for ``spec`` at drift ``epoch`` (built once, reused).

    QCoDeS instrument names are global in a process, so a chip built for another epoch is
    closed before its successor takes the name. The spec's offsets (``qops chip drift``)
    are added to the hidden values.

    Raises:
        UnknownQubitError, OffsetError: An offset names a qubit not on the chip, or makes
            a hidden value invalid.
    """
    with _lock:
        held = _chips.get(spec.chip_id)
        if held is not None and held[0] == spec and held[1] == epoch:
            return held[2]
        if held is not None:
            held[2].close()
        name = "sim_" + re.sub(r"\W", "_", spec.chip_id)
        chip = SimulatedChip(name, spec.n_qubits, spec.topology, seed=spec.seed, epoch=epoch)
        try:
            apply_offsets(chip, spec.offsets)
        except (UnknownQubitError, OffsetError):
            chip.close()  # frees the name for the next attempt
            raise
        _chips[spec.chip_id] = (spec, epoch, chip)
        return chip


def metadata_instrument() -> QHMetaData:
    """The process's ``qh_meta`` instrument (QCoDeS allows one per name)."""
    with _lock:
        if not _metadata:
            _metadata.append(QHMetaData(METADATA_INSTRUMENT_NAME, static_tags=["qops-calibration"]))
        return _metadata[0]


def close_instruments() -> None:
    """Close the process's simulated chips and ``qh_meta`` (frees their QCoDeS names)."""
    with _lock:
        for _, _, chip in _chips.values():
            chip.close()
        _chips.clear()
        for metadata in _metadata:
            metadata.close()
        _metadata.clear()


def measurement_context(
    spec: ChipSpec, epoch: int, database_path: Path, execution_id: str
) -> MeasurementContext:
    """Where the measurements of one calibration run go.

    Raises:
        qops.calibration.errors.MeasurementDatabaseError: ``database_path`` cannot be written.
    """
    return MeasurementContext(
        simulated_chip(spec, epoch),
        metadata_instrument(),
        database_path,
        experiment_name=spec.chip_id,
        tags=[f"execution:{execution_id}"],
        attributes={"execution_id": execution_id, "chip_id": spec.chip_id},
    )
