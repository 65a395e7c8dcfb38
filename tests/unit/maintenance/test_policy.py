"""The maintenance policy file."""

from __future__ import annotations

from pathlib import Path

import pytest

from qops.calibration.graph import PARAMETER_UNITS
from qops.maintenance.errors import PolicyError
from qops.maintenance.policy import Direction, load_policy


def test_load_policy_default_names_every_calibrated_parameter() -> None:
    policy = load_policy()

    assert set(policy.parameters) == set(PARAMETER_UNITS)
    assert policy.of("t1").direction is Direction.HIGHER
    assert policy.of("qubit_frequency").direction is Direction.NONE
    assert policy.of("unlisted").stale_after_hours == 24


def test_load_policy_own_file_overrides(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("parameters:\n  t1: {direction: higher, minimum: 1.0e-5, trend_length: 2}\n")

    policy = load_policy(path)

    assert policy.of("t1").minimum == 1e-5
    assert policy.of("t1").trend_length == 2
    assert policy.of("t1").stale_after_hours is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("parameters: [1, 2", "not valid YAML"),
        ("- a\n- b\n", "must hold a mapping, found list"),
        ("parameters:\n  t1: {minimum: 2, maximum: 1}\n", "parameters.t1: .*minimum 2 is above"),
        ("parameters:\n  t1: {direction: up}\n", "parameters.t1.direction"),
        ("parameters:\n  t1: {treshold: 1}\n", "parameters.t1.treshold: Extra inputs"),
        ("default: {stale_after_hours: -1}\n", "default.stale_after_hours"),
        ("parameters:\n  t1: {minimum: .nan}\n", "minimum must be a finite number"),
    ],
)
def test_load_policy_bad_file_names_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "lab-policy.yaml"
    path.write_text(text)

    with pytest.raises(PolicyError, match=expected) as caught:
        load_policy(path)

    assert "lab-policy.yaml" in str(caught.value)


def test_load_policy_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nothere\.yaml: cannot be read"):
        load_policy(tmp_path / "nothere.yaml")
