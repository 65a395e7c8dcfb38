"""Catalog metadata of a run measured with real QCoDeS instruments in a station."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from qcodes import Station
from qcodes.dataset import Measurement
from qcodes.instrument import Instrument
from qcodes.instrument_drivers.mock_instruments import DummyInstrument
from qcodes.parameters import ManualParameter

from qops.qcodes.metadata import extract_metadata, parse_snapshot, ranking_of
from qops.qcodes.reader import QcodesReader
from qops.qcodes_metadata import QHMetaData
from tests.unit.qcodes.qcodes_dbs import create_db


@pytest.fixture(autouse=True)
def _close_instruments() -> Iterator[None]:
    yield
    Instrument.close_all()


def test_extract_metadata_instruments_taking_part_give_tags_and_settings(tmp_path: Path) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    dac = DummyInstrument("dac", gates=["ch1", "ch2"])
    dmm = DummyInstrument("dmm", gates=["v1"])
    idle = DummyInstrument("idle", gates=["g"])
    meta = QHMetaData("qh_meta", static_attributes={"project": "from-qh-meta"})
    meta.add_tags(["ALLXY"])
    Station(dac, dmm, idle, meta)
    dac.ch2(0.25)
    meas = Measurement(exp=exp, name="pinch-off\nsecond line")
    meas.register_parameter(dac.ch1)
    meas.register_parameter(dmm.v1, setpoints=(dac.ch1,))
    with meas.run() as saver:
        for v in (0.0, 0.5):
            dac.ch1(v)
            saver.add_result((dac.ch1, v), (dmm.v1, dmm.v1()))
    run_id = saver.run_id
    conn.close()

    with QcodesReader(db) as reader:
        info = reader.run_info(run_id)
    metadata = extract_metadata(
        info,
        parse_snapshot(info, str(db)),
        database_path=db,
        set_up="fridge-2",
        static_attributes={"project": "from-source", "lab": "B"},
    )

    assert metadata.name == "pinch-off"
    assert metadata.description.splitlines()[0] == "second line"
    assert f"QCoDeS run {run_id} of lab.db" in metadata.description
    assert metadata.tags == sorted(["ALLXY", "Gate ch1", "Gate v1", "dac", "dmm"])
    assert metadata.attributes["dac.ch2"] == "0.25 V"
    assert "idle.g" not in metadata.attributes
    assert metadata.attributes["set-up"] == "fridge-2"
    assert metadata.attributes["lab"] == "B"
    assert metadata.attributes["project"] == "from-qh-meta"
    assert metadata.collected is not None
    assert metadata.collected.utcoffset() is not None
    assert metadata.ranking == 0


@pytest.mark.parametrize(("tag", "ranking"), [("star", 1), ("cross", -1), ("", 0), ("x", 0)])
def test_ranking_of_inspectr_tag_star_cross_else_zero(tag: str, ranking: int) -> None:
    assert ranking_of({"inspectr_tag": tag}) == ranking


def test_extract_metadata_qh_meta_values_stored_as_values_not_python_text(tmp_path: Path) -> None:
    """A parameter's snapshot (as eTiKeT's metadata manager records one) is its value."""
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    dac = DummyInstrument("dac", gates=["ch1"])
    qubit_frequency = ManualParameter("f01", unit="GHz", initial_value=5.125)
    meta = QHMetaData("qh_meta", static_attributes={"cooldown": 7})
    meta.add_attributes(
        {
            "f01": qubit_frequency.snapshot(),
            "fit": {"kappa": 0.5, "model": "lorentzian"},
            "qubits": ["Q1", "Q2"],
            "note": "as typed",
            "unset": None,
        }
    )
    Station(dac, meta)
    meas = Measurement(exp=exp, name="spectroscopy")
    meas.register_parameter(dac.ch1)
    with meas.run() as saver:
        saver.add_result((dac.ch1, 0.1))
    conn.close()

    with QcodesReader(db) as reader:
        info = reader.run_info(saver.run_id)
    attributes = extract_metadata(
        info,
        parse_snapshot(info, str(db)),
        database_path=db,
        set_up="fridge-2",
        static_attributes={},
    ).attributes

    assert attributes["f01"] == "5.125 GHz"
    assert json.loads(attributes["fit"]) == {"kappa": 0.5, "model": "lorentzian"}
    assert json.loads(attributes["qubits"]) == ["Q1", "Q2"]
    assert attributes["cooldown"] == "7"
    assert attributes["note"] == "as typed"
    assert "unset" not in attributes
    assert not any(value.startswith("{'") for value in attributes.values())
