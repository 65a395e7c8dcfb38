"""``qops prefect automations apply``: create or update the automations of the repository.

Each ``automations/*.yaml`` file is one Prefect automation in Prefect's own schema
(``name``, ``trigger``, ``actions``), except that a ``run-deployment`` action may name its
deployment as ``deployment: <flow>/<deployment>``; applying resolves it to the deployment's
id on the Prefect API. An automation of the same name is updated, so applying twice changes
nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect.automations import AutomationCore
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from pydantic import ValidationError

from qops.errors import QopsError


class AutomationFileError(QopsError):
    """An automation file cannot be applied.

    Args:
        path: The file.
        problem: What is wrong.
    """

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"automation {path}: {problem}")


def _resolve_deployments(path: Path, document: dict[str, Any]) -> list[str]:
    """Replace ``deployment: <flow>/<name>`` of each action by its ``deployment_id``."""
    named: list[str] = []
    actions = document.get("actions")
    if not isinstance(actions, list):
        raise AutomationFileError(path, "needs a list of actions")
    naming = [a for a in actions if isinstance(a, dict) and "deployment" in a]
    if not naming:
        return named
    with get_client(sync_client=True) as client:
        for action in naming:
            name = str(action.pop("deployment"))
            try:
                deployment = client.read_deployment_by_name(name)
            except ObjectNotFound as e:
                raise AutomationFileError(
                    path, f"deployment {name!r} not found on the Prefect API (prefect deploy --all)"
                ) from e
            action["deployment_id"] = str(deployment.id)
            named.append(name)
    return named


def load_automation(path: Path, within_s: float | None = None) -> tuple[AutomationCore, list[str]]:
    """Read one automation file; return it and the deployments it runs.

    Args:
        path: The file.
        within_s: If given, the ``within`` of a proactive trigger (how long without the
            expected events before it fires; the tests shorten the zombie-run wait).

    Raises:
        AutomationFileError: The file cannot be read, is not YAML, breaks Prefect's schema
            or names a deployment the API does not know.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise AutomationFileError(path, f"cannot be read: {e}") from e
    except yaml.YAMLError as e:
        raise AutomationFileError(path, f"is not valid YAML: {e}") from e
    if not isinstance(document, dict):
        raise AutomationFileError(path, "must hold a mapping")
    trigger = document.get("trigger")
    if within_s is not None and isinstance(trigger, dict) and trigger.get("posture") == "Proactive":
        trigger["within"] = within_s
    deployments = _resolve_deployments(path, document)
    try:
        return AutomationCore.model_validate(document), deployments
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise AutomationFileError(path, problems) from e


def apply_automations(
    directory: Path, within_s: float | None = None
) -> list[tuple[str, str, list[str]]]:
    """Create or update every automation of ``directory/*.yaml`` (in name order).

    ``within_s`` overrides the ``within`` of proactive triggers (see :func:`load_automation`).

    Returns:
        ``(name, "created" | "updated", deployments)`` per automation.

    Raises:
        AutomationFileError: A file cannot be applied (the ones before it are applied).
    """
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise AutomationFileError(directory, "holds no *.yaml automation")
    applied: list[tuple[str, str, list[str]]] = []
    for path in files:
        core, deployments = load_automation(path, within_s)
        with get_client(sync_client=True) as client:
            existing = client.read_automations_by_name(name=core.name)
            if not existing:
                client.create_automation(automation=core)
                applied.append((core.name, "created", deployments))
                continue
            client.update_automation(automation_id=existing[0].id, automation=core)
            for duplicate in existing[1:]:  # left by a create that raced another apply
                client.delete_automation(automation_id=duplicate.id)
            applied.append((core.name, "updated", deployments))
    return applied
