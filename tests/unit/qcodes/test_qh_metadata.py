"""The QHMetaData instrument: naming rule, static and dynamic metadata, Station YAML."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from qcodes import Station
from qcodes.instrument import Instrument

from qops.qcodes.errors import QHMetaDataNameError
from qops.qcodes_metadata import QHMetaData


@pytest.fixture(autouse=True)
def _close_instruments() -> Iterator[None]:
    yield
    Instrument.close_all()


def test_qh_metadata_other_name_raises_name_error() -> None:
    with pytest.raises(QHMetaDataNameError, match="must be named 'qh_meta'"):
        QHMetaData("meta")


def test_qh_metadata_reset_keeps_static_and_dynamic_overrides_static() -> None:
    meta = QHMetaData("qh_meta", static_tags=["lab"], static_attributes={"project": "p1"})
    meta.add_tags(["cal", "lab", "cal"])
    meta.add_attributes({"project": "p2", "qubit": "Q1"})
    snapshot = Station(meta).snapshot()["instruments"]["qh_meta"]["parameters"]
    assert snapshot["tags"]["value"] == ["cal", "lab"]
    assert snapshot["attributes"]["value"] == {"project": "p2", "qubit": "Q1"}

    meta.reset()

    assert meta.tags() == ["lab"]
    assert meta.attributes() == {"project": "p1"}


def test_qh_metadata_loads_from_station_yaml(tmp_path: Path) -> None:
    config = tmp_path / "station.yaml"
    config.write_text(
        "instruments:\n"
        "  qh_meta:\n"
        "    type: qops.qcodes_metadata.QHMetaData\n"
        "    init:\n"
        "      static_tags: [cool_experiment]\n"
        "      static_attributes: {project: resonators, measurement_computer: PC-5}\n"
    )
    station = Station(config_file=str(config))

    meta = station.load_instrument("qh_meta")

    assert isinstance(meta, QHMetaData)
    assert meta.tags() == ["cool_experiment"]
    assert meta.attributes() == {"project": "resonators", "measurement_computer": "PC-5"}
