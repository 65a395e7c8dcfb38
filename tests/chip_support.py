"""Fixtures and helpers for the simulated-chip and calibration-measurement tests.

``TagRecorder`` is the smallest QCoDeS instrument that can stand in the station as
``qh_meta``: it keeps tags and attributes and shows them in its snapshot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from qcodes.instrument import Instrument

from qops.calibration.graph import StepName, input_key
from qops.calibration.measurement import MeasurementContext
from qops.chip import SimulatedChip

SEED = 20260101
TOPOLOGY = [[0, 1], [1, 2]]


class TagRecorder(Instrument):
    """A ``qh_meta`` instrument: static and dynamic tags and attributes in its snapshot.

    The values live in the parameters' caches, because a QCoDeS measurement snapshots
    its station without reading parameters again.
    """

    def __init__(self, name: str = "qh_meta", static_tags: list[str] | None = None) -> None:
        super().__init__(name)
        self.static_tags = list(static_tags or [])
        self.tags = self.add_parameter("tags", get_cmd=None, set_cmd=None)
        self.attributes = self.add_parameter("attributes", get_cmd=None, set_cmd=None)
        self.reset()

    def get_idn(self) -> dict[str, str | None]:
        return {"vendor": "tests", "model": "TagRecorder", "serial": None, "firmware": None}

    def reset(self) -> None:
        self.tags.set(sorted(self.static_tags))
        self.attributes.set({})

    def add_tags(self, tags: list[str]) -> None:
        self.tags.set(sorted({*self.tags.get(), *tags}))

    def add_attributes(self, attributes: dict[str, str]) -> None:
        self.attributes.set({**self.attributes.get(), **attributes})


@contextlib.contextmanager
def open_chip(name: str = "chip", seed: int = SEED, epoch: int = 0) -> Iterator[SimulatedChip]:
    """A chip of three qubits that is closed (its QCoDeS name freed) afterwards."""
    chip = SimulatedChip(name, 3, TOPOLOGY, seed=seed, epoch=epoch)
    try:
        yield chip
    finally:
        chip.close()


@pytest.fixture
def chip() -> Iterator[SimulatedChip]:
    with open_chip() as simulated:
        yield simulated


@pytest.fixture
def qh_meta() -> Iterator[TagRecorder]:
    recorder = TagRecorder(static_tags=["simulation"])
    try:
        yield recorder
    finally:
        recorder.close()


@pytest.fixture
def context(chip: SimulatedChip, qh_meta: TagRecorder, tmp_path: Path) -> MeasurementContext:
    return MeasurementContext(chip, qh_meta, tmp_path / "calibration.db")


def true_inputs(chip: SimulatedChip, step: StepName, target: str) -> dict[str, float]:
    """The inputs ``step`` needs on ``target``, set to the chip's hidden true values."""
    if step is StepName.CHECK_CZ:
        return {
            input_key(name, qid): getattr(chip.truth(qid), name)
            for qid in target.split("-")
            for name in ("qubit_frequency", "pi_amplitude")
        }
    truth = chip.truth(target)
    return {
        name: getattr(truth, name)
        for name in ("qubit_frequency", "readout_frequency", "pi_amplitude")
    }
