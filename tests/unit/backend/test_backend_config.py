"""The 2300 configuration and what get_dynamic makes of calibration values."""

from __future__ import annotations

from pathlib import Path

import pytest

from qops.backend.config import load_backend_config
from qops.backend.errors import BackendConfigError, CompilerPassError
from qops.backend.sources import CalibrationValue, InMemoryCalibrationSource, dynamic_payload

MCKAY = "opensquirrel.passes.decomposer.mckay_decomposer.McKayDecomposer"

CONFIG = f"""
name: spin-2
chip_id: chip-a
nqubits: 2
topology: [[0, 1]]
pgs: [X, Y, CNOT]
default_compiler_config:
  decomposition:
    - {{path: {MCKAY}, method: decompose, arguments: {{}}}}
extra_metrics: {{fridge_temperature_in_mk: 8.4}}
calibration:
  - {{parameter_name: t1, qid: Q0, value: 0.995}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "backend.yaml"
    path.write_text(text)
    return path


def test_load_backend_config_valid_file_gives_config(tmp_path: Path) -> None:
    config = load_backend_config(write(tmp_path, CONFIG))
    assert config.chip == "chip-a"
    assert config.default_compiler_config.decomposition[0].path == MCKAY
    assert config.extra_metrics == {"fridge_temperature_in_mk": 8.4}


@pytest.mark.parametrize(
    ("path", "method", "reason"),
    [
        ("opensquirrel.passes.decomposer.nowhere.Nothing", "decompose", "does not import"),
        ("opensquirrel.passes.decomposer.mckay_decomposer.Missing", "decompose", "no class"),
        (MCKAY, "explode", "no method explode"),
        ("os.path.Thing", "decompose", "opensquirrel package"),
    ],
)
def test_load_backend_config_unusable_pass_is_refused_naming_it(
    tmp_path: Path, path: str, method: str, reason: str
) -> None:
    text = CONFIG.replace(
        f"{{path: {MCKAY}, method: decompose", f"{{path: {path}, method: {method}"
    )
    with pytest.raises(CompilerPassError, match=reason) as info:
        load_backend_config(write(tmp_path, text))
    assert f"decomposition[0] {path}.{method}" in str(info.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("name: x\nnqubits: -1\n", "nqubits"),
        ("name: x\nnqubits: 1\npgs: [' ']\n", "no name"),
        ("name: x\nnqubits: 1\ndefault_compiler_config: {decompositon: []}\n", "decompositon"),
        ("name: x\nnqubits: 1\ncolour: red\n", "colour"),
        ("- a\n- b\n", "expected a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
        ("name: x\nnqubits: 1\ncalibration: [{parameter_name: t1, qid: X0, value: 1}]\n", "X0"),
    ],
)
def test_load_backend_config_bad_field_is_refused(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(BackendConfigError, match=reason):
        load_backend_config(write(tmp_path, text))


def test_load_backend_config_quis_gate_names_are_accepted(tmp_path: Path) -> None:
    config = load_backend_config(write(tmp_path, "name: x\nnqubits: 1\npgs: [mX90, Rx, measure]\n"))
    assert config.pgs == ["mX90", "Rx", "measure"]


def test_load_backend_config_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackendConfigError, match="cannot read"):
        load_backend_config(tmp_path / "absent.yaml")


def test_dynamic_payload_maps_qubits_pairs_and_extras() -> None:
    values = [
        CalibrationValue(parameter_name="t1", qid="Q0", value=0.995),
        CalibrationValue(parameter_name="t1", qid="Q1", value=0.988),
        CalibrationValue(parameter_name="cnot_fidelity", qid="Q1-Q0", value=0.995),
        CalibrationValue(parameter_name="cnot_fidelity", qid="Q1-Q2", value=0.97),
        CalibrationValue(parameter_name="t2", qid="Q0", value=None),
    ]
    payload = dynamic_payload(values, {"fridge_temperature_in_mk": 8.4})
    assert payload == {
        "t1": {"__labels__": ["qubit"], "q0": 0.995, "q1": 0.988},
        "cnot_fidelity": {"__labels__": ["qubit1", "qubit2"], "q1": {"q0": 0.995, "q2": 0.97}},
        "t2": {"__labels__": ["qubit"], "q0": None},
        "fridge_temperature_in_mk": 8.4,
    }


def test_dynamic_payload_conflicting_or_bad_values_left_out() -> None:
    values = [
        CalibrationValue(parameter_name="t1", qid="Q0", value=1.0),
        CalibrationValue(parameter_name="t1", qid="Q0-Q1", value=2.0),
        CalibrationValue(parameter_name="t2", qid="coupler", value=3.0),
    ]
    payload = dynamic_payload(values, {"t1": 5.0})
    assert payload == {"t1": {"__labels__": ["qubit"], "q0": 1.0}}


def test_in_memory_source_set_parameters_replaces_chip_values() -> None:
    source = InMemoryCalibrationSource(
        {"chip-a": [CalibrationValue(parameter_name="t1", qid="Q0", value=1.0)]}
    )
    source.set_parameters("chip-a", [CalibrationValue(parameter_name="t1", qid="Q1", value=2.0)])
    assert [v.qid for v in source.current_parameters("chip-a")] == ["Q1"]
    assert source.current_parameters("chip-b") == []


def test_load_backend_config_documented_example_is_valid() -> None:
    example = Path(__file__).parents[3] / "docs" / "examples" / "backend.yaml"
    config = load_backend_config(example)
    assert config.chip == "chip-a"
    assert dynamic_payload(config.calibration, config.extra_metrics) == {
        "t1": {"__labels__": ["qubit"], "q0": 0.995, "q1": 0.988},
        "cnot_fidelity": {"__labels__": ["qubit1", "qubit2"], "q1": {"q0": 0.995}},
        "fridge_temperature_in_mk": 8.4,
    }


@pytest.mark.parametrize(
    ("section", "where"),
    [
        ("execution: {max_shots: 0}", "execution.max_shots"),
        ("execution: {session_timeout_s: -1}", "execution.session_timeout_s"),
        ("execution: {shots: 10}", "execution.shots"),
    ],
)
def test_load_backend_config_bad_execution_limit_names_the_field(
    tmp_path: Path, section: str, where: str
) -> None:
    path = write(tmp_path, f"name: spin-2\nnqubits: 2\n{section}\n")
    with pytest.raises(BackendConfigError, match=where):
        load_backend_config(path)
