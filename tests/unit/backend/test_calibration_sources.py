"""Merging calibration sources, metric values of parameter versions, the config switch."""

from __future__ import annotations

import math
from collections.abc import Hashable

import pytest

from qops.backend.config import parse_backend_config
from qops.backend.errors import BackendConfigError
from qops.backend.provenance_source import calibration_value
from qops.backend.sources import (
    CalibrationValue,
    InMemoryCalibrationSource,
    MergedCalibrationSource,
)
from qops.provenance.models import ParameterVersion
from qops.provenance.values import value_type_of
from qops.timeutil import utc_now

CHIP = "chip-a"


def value(name: str, qid: str, number: float) -> CalibrationValue:
    return CalibrationValue(parameter_name=name, qid=qid, value=number)


class Unversioned:
    """A source that has no stamp: ``parameters_version`` is None."""

    def current_parameters(self, chip_id: str) -> list[CalibrationValue]:
        return [value("t2_echo", "Q0", 3e-5)]

    def parameters_version(self, chip_id: str) -> Hashable:
        return None


def version(parameter_value: float | int | str) -> ParameterVersion:
    return ParameterVersion(
        entity_id="t1:Q0:e:t",
        parameter_name="t1",
        qid="Q0",
        value=parameter_value,
        value_type=value_type_of(parameter_value),
        version=3,
        valid_from=utc_now(),
        execution_id="e",
        task_id="t",
        task_name="check-t1",
        project_id="lab",
        chip_id=CHIP,
    )


def test_merged_source_first_source_wins_per_parameter_and_qubit() -> None:
    first = InMemoryCalibrationSource({CHIP: [value("t1", "q0", 5e-5)]})
    second = InMemoryCalibrationSource(
        {CHIP: [value("t1", "Q0", 1.0), value("t1", "Q1", 2.0), value("cz", "Q0-Q1", 0.9)]}
    )

    merged = MergedCalibrationSource(first, second).current_parameters(CHIP)

    assert [(v.parameter_name, v.qid, v.value) for v in merged] == [
        ("t1", "q0", 5e-5),
        ("t1", "Q1", 2.0),
        ("cz", "Q0-Q1", 0.9),
    ]


def test_merged_source_version_changes_when_any_source_changes() -> None:
    first = InMemoryCalibrationSource({CHIP: [value("t1", "Q0", 5e-5)]})
    second = InMemoryCalibrationSource()
    merged = MergedCalibrationSource(first, second)
    seen: list[Hashable] = [merged.parameters_version(CHIP)]

    first.set_parameters(CHIP, [value("t1", "Q0", 6e-5)])
    seen.append(merged.parameters_version(CHIP))
    second.set_parameters(CHIP, [value("t1", "Q1", 6e-5)])
    seen.append(merged.parameters_version(CHIP))

    assert len(set(seen)) == 3


def test_merged_source_with_unversioned_source_has_no_version() -> None:
    merged = MergedCalibrationSource(InMemoryCalibrationSource(), Unversioned())

    assert merged.parameters_version(CHIP) is None
    assert [v.parameter_name for v in merged.current_parameters(CHIP)] == ["t2_echo"]


@pytest.mark.parametrize(
    ("recorded", "reported"),
    [(5.1e-5, 5.1e-5), (1024, 1024.0), ("ok", None), (math.nan, None), (-math.inf, None)],
)
def test_calibration_value_only_finite_numbers_are_metrics(
    recorded: float | int | str, reported: float | None
) -> None:
    metric = calibration_value(version(recorded))

    assert (metric.value if metric is not None else None) == reported


def test_backend_config_unknown_calibration_source_is_refused_naming_field() -> None:
    raw = {"name": "spin-2", "nqubits": 2, "calibration_source": "qdash"}

    with pytest.raises(BackendConfigError, match="calibration_source"):
        parse_backend_config(raw, "backend.yaml")


def test_backend_config_defaults_to_provenance_of_environment_project() -> None:
    config = parse_backend_config({"name": "spin-2", "nqubits": 2}, "backend.yaml")

    assert config.calibration_source == "provenance"
    assert config.project_id is None
