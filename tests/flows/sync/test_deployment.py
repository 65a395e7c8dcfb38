"""The sync deployments in prefect.yaml: the fan-out runs every minute, its children unbounded."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from flows.sync_fan_out import SYNC_DEPLOYMENT

ROOT = Path(__file__).resolve().parents[3]


def _deployment(name: str) -> tuple[dict[str, Any], Any]:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = [d for d in config["deployments"] if d["name"] == name]
    path, function = deployment["entrypoint"].split(":")
    flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), function)
    return deployment, flow


def test_prefect_yaml_sync_fan_out_every_minute_one_at_a_time() -> None:
    deployment, flow = _deployment("sync-qcodes-fan-out")

    assert flow.name == "sync-qcodes-fan-out"
    assert deployment["schedules"] == [{"interval": 60}]
    assert deployment["concurrency_limit"] == 1


def test_prefect_yaml_sync_qcodes_children_unscheduled_and_unbounded() -> None:
    deployment, flow = _deployment("sync-qcodes")

    # The fan-out starts its children by this name: flow/deployment.
    assert f"{flow.name}/{deployment['name']}" == SYNC_DEPLOYMENT
    # Its children run side by side; the global concurrency limits hold each source.
    assert "schedules" not in deployment
    assert "concurrency_limit" not in deployment
