"""The repository's automation files and their loader: valid, and a bad file is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from qops.cli.prefect_automations import AutomationFileError, load_automation

ROOT = Path(__file__).resolve().parents[2]


def test_repository_automations_declare_zombie_flow_run_crash() -> None:
    zombie, deployments = load_automation(ROOT / "automations" / "crash-zombie-flow-runs.yaml")

    trigger = zombie.trigger.model_dump(mode="json")
    assert trigger["posture"] == "Proactive"
    assert trigger["after"] == ["prefect.flow-run.heartbeat"]
    assert trigger["within"] == 90  # three heartbeats of PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30
    assert deployments == []
    (action,) = zombie.actions
    assert action.type == "change-flow-run-state"
    assert action.model_dump(mode="json")["state"] == "CRASHED"


def test_load_automation_within_overrides_a_proactive_trigger() -> None:
    zombie, _ = load_automation(ROOT / "automations" / "crash-zombie-flow-runs.yaml", 25)

    assert zombie.trigger.model_dump(mode="json")["within"] == 25


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n", "must hold a mapping"),
        ("name: x\ntrigger: {}\n", "needs a list of actions"),
        ("name: x\ntrigger: {type: event}\nactions: [{type: nope}]\n", "actions"),
        ("name: [\n", "is not valid YAML"),
    ],
)
def test_load_automation_bad_file_fails_naming_the_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "automation.yaml"
    path.write_text(text)

    with pytest.raises(AutomationFileError, match=r"^automation ") as raised:
        load_automation(path)

    assert expected in str(raised.value)
    assert str(path) in str(raised.value)


def test_load_automation_missing_file_fails_naming_it(tmp_path: Path) -> None:
    with pytest.raises(AutomationFileError, match="cannot be read"):
        load_automation(tmp_path / "nope.yaml")
