"""``qops backend serve`` answers get_dynamic from the provenance store by default."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from pymongo.database import Database

from qops.cli.backend import calibration_source
from qops.mongo import Document
from qops.monitor.client import MetaClient
from tests.cli import qops_process
from tests.integration.backend.conftest import (
    CHIP,
    PROJECT,
    Record,
    backend_config,
)

CONFIG = f"""\
name: spin-2
chip_id: {CHIP}
nqubits: 2
topology: [[0, 1]]
extra_metrics: {{fridge_temperature_in_mk: 8.4}}
calibration:
  - {{parameter_name: t1, qid: Q0, value: 1.0}}
  - {{parameter_name: cnot_fidelity, qid: Q1-Q0, value: 0.995}}
"""


def test_backend_serve_cli_reports_provenance_over_configured_values(
    tmp_path: Path, record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QOPS_PROJECT_ID", PROJECT)
    config = tmp_path / "backend.yaml"
    config.write_text(CONFIG)
    record("Q0", {"t1": 5.1e-5})
    record("Q0-Q1", {"cz_fidelity": 0.991})
    record("Q1", {"t1": 7.7e-5}, project_id="other-lab")
    loopback = "tcp://127.0.0.1:*"
    serve = ["backend", "serve", "--config", str(config)]
    with qops_process(*serve, "--req-address", loopback, "--pub-address", loopback) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"requests on (tcp://\S+),", line)
        assert found, line
        with MetaClient(found[1], timeout_s=5) as client:
            first = client.get_dynamic()
            record("Q0", {"t1": 6.2e-5})
            second = client.get_dynamic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0

    assert first == {
        "t1": {"__labels__": ["qubit"], "q0": 5.1e-5},
        "cz_fidelity": {"__labels__": ["qubit1", "qubit2"], "q0": {"q1": 0.991}},
        "cnot_fidelity": {"__labels__": ["qubit1", "qubit2"], "q1": {"q0": 0.995}},
        "fridge_temperature_in_mk": 8.4,
    }
    assert second["t1"] == {"__labels__": ["qubit"], "q0": 6.2e-5}


def test_calibration_source_project_of_config_overrides_environment(
    mongo_db: Database[Document], record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QOPS_PROJECT_ID", "other-lab")
    record("Q0", {"t1": 5.1e-5})
    record("Q0", {"t1": 7.7e-5}, project_id="other-lab")

    from_config = calibration_source(backend_config(project_id=PROJECT), mongo_db)
    from_environment = calibration_source(backend_config(project_id=None), mongo_db)

    assert [v.value for v in from_config.current_parameters(CHIP)] == [5.1e-5]
    assert [v.value for v in from_environment.current_parameters(CHIP)] == [7.7e-5]


def test_calibration_source_config_mode_serves_only_configured_values(
    mongo_db: Database[Document], record: Record
) -> None:
    record("Q0", {"t1": 5.1e-5})
    config = backend_config(
        calibration_source="config",
        calibration=[{"parameter_name": "t1", "qid": "Q0", "value": 1.0}],
    )

    values = calibration_source(config, mongo_db).current_parameters(CHIP)

    assert [(v.parameter_name, v.qid, v.value) for v in values] == [("t1", "Q0", 1.0)]
