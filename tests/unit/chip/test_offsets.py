"""Persistent offsets of the simulated chip's hidden values."""

from __future__ import annotations

from pathlib import Path

import pytest

from qops.chip.errors import OffsetError, UnknownQubitError
from qops.chip.offsets import OffsetStore, apply_offsets, offsets_path
from tests.chip_support import open_chip


def test_offsets_accumulate_and_survive_a_new_store(tmp_path: Path) -> None:
    OffsetStore(tmp_path).add("chip-a", "Q2", {"qubit_frequency": 1e6})
    OffsetStore(tmp_path).add("chip-a", "Q2", {"qubit_frequency": 1e6, "t1": -5e-6})
    assert OffsetStore(tmp_path).load("chip-a") == {"Q2": {"qubit_frequency": 2e6, "t1": -5e-6}}
    assert OffsetStore(tmp_path).load("chip-b") == {}


def test_offsets_clear_one_qubit_then_all(tmp_path: Path) -> None:
    store = OffsetStore(tmp_path)
    store.add("c", "Q0", {"t1": -1e-6})
    store.add("c", "Q1", {"t1": -1e-6})
    assert store.clear("c", "Q0") == {"Q1": {"t1": -1e-6}}
    assert store.clear("c") == {}
    assert store.load("c") == {}


@pytest.mark.parametrize(
    ("qid", "changes", "message"),
    [
        ("Q0", {"colour": 1.0}, "'colour' is not a hidden value"),
        ("Q0", {"t1": float("nan")}, "t1 of Q0 must be finite"),
        ("qubit", {"t1": 1.0}, "'qubit' is not a qubit id"),
    ],
)
def test_offsets_bad_input_refused_and_stored_offsets_kept(
    tmp_path: Path, qid: str, changes: dict[str, float], message: str
) -> None:
    store = OffsetStore(tmp_path)
    store.add("c", "Q1", {"t1": -1e-6})
    with pytest.raises(OffsetError, match=message):
        store.add("c", qid, changes)
    assert store.load("c") == {"Q1": {"t1": -1e-6}}


def test_offsets_corrupt_file_names_it(tmp_path: Path) -> None:
    path = offsets_path(tmp_path, "c")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(OffsetError, match=r"offsets\.json is not JSON"):
        OffsetStore(tmp_path).load("c")


def test_apply_offsets_shifts_truth_and_refuses_invalid() -> None:
    with open_chip() as chip:
        before = chip.truth("Q1")
        apply_offsets(chip, {"Q1": {"qubit_frequency": 2e6}})
        assert chip.truth("Q1").qubit_frequency == pytest.approx(before.qubit_frequency + 2e6)
        with pytest.raises(OffsetError, match="t1: Input should be greater than 0"):
            apply_offsets(chip, {"Q1": {"t1": -1.0}})
        with pytest.raises(UnknownQubitError):
            apply_offsets(chip, {"Q9": {"t1": 1e-6}})
