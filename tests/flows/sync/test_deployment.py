"""The sync-qcodes deployment in prefect.yaml points at the flow and runs every minute."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def test_prefect_yaml_sync_qcodes_deployment_every_minute_resolves_to_flow() -> None:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = [d for d in config["deployments"] if d["name"] == "sync-qcodes"]
    path, function = deployment["entrypoint"].split(":")

    flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), function)

    assert flow.name == "sync-qcodes"
    assert deployment["schedules"] == [{"interval": 60}]
    assert deployment["concurrency_limit"] == 1
