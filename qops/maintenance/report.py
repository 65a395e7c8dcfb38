"""The report of one maintenance run: what was checked, what was recalibrated, and why.

The ``maintain`` flow builds a :class:`MaintenanceReport` (one :class:`NodeReport` per step
and target of the walk) and shows it as the Markdown artifact :func:`artifact_key`; the
CLI prints it with :func:`summary_lines`.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from qops.calibration.graph import StepName
from qops.calibration.report import CalibrationChange
from qops.maintenance.checks import CheckResult, slug


class Action(StrEnum):
    """What the run did with one step on one target."""

    KEPT = "kept"
    """Checked and found in spec: nothing to do."""
    RECALIBRATED = "recalibrated"
    FAILED = "failed"
    """The check or the recalibration failed (raised)."""
    SKIPPED = "skipped"
    """A prerequisite was neither in spec nor recalibrated."""


class NodeReport(BaseModel):
    """One step on one target: the decision and what came of it.

    Attributes:
        step: The calibration step.
        target: Its qubit or pair.
        action: What was done.
        why: Why, one sentence each (health findings, the check's reasons, the blocker).
        check: The check before the decision; ``None`` when health decided (missing,
            stale, out of spec, degrading) or the node was skipped.
        verification: The check after a recalibration.
        versions: Versions the recalibration wrote, by parameter.
    """

    step: StepName
    target: str
    action: Action
    why: list[str] = Field(default_factory=list)
    check: CheckResult | None = None
    verification: CheckResult | None = None
    versions: dict[str, int] = Field(default_factory=dict)

    @property
    def back_in_spec(self) -> bool | None:
        """After a recalibration, whether its verification check passed."""
        if self.action is not Action.RECALIBRATED or self.verification is None:
            return None
        return self.verification.passed


class MaintenanceReport(BaseModel):
    """What one ``maintain`` run did to a chip.

    Attributes:
        execution_id: The run (the flow run id).
        project_id: The provenance project.
        chip_id: The chip.
        epoch: The simulated chip's drift epoch of the run.
        database_path: The QCoDeS database of the checks and recalibrations.
        qubits: Qubits maintained.
        pairs: Coupled pairs maintained.
        nodes: Every step on every target, in calibration order.
        changes: Parameters the run changed (from the versions before and after).
    """

    execution_id: str
    project_id: str
    chip_id: str
    epoch: int
    database_path: str
    qubits: list[str]
    pairs: list[str]
    nodes: list[NodeReport]
    changes: list[CalibrationChange] = Field(default_factory=list)

    def with_action(self, action: Action) -> list[NodeReport]:
        """The nodes the run treated with ``action``."""
        return [n for n in self.nodes if n.action is action]

    @property
    def checks(self) -> list[CheckResult]:
        """Every check the run made (before decisions and verifications)."""
        found = [n.check for n in self.nodes if n.check is not None]
        return found + [n.verification for n in self.nodes if n.verification is not None]

    @property
    def check_points(self) -> int:
        """Setpoints measured by the checks."""
        return sum(c.points for c in self.checks)

    @property
    def in_spec(self) -> bool:
        """Whether every node ended kept or recalibrated back in spec."""
        return all(
            n.action is Action.KEPT or (n.action is Action.RECALIBRATED and n.back_in_spec)
            for n in self.nodes
        )


def artifact_key(chip_id: str) -> str:
    """The stable key of a chip's maintenance artifact (``maintain-<chip>``)."""
    return f"maintain-{slug(chip_id)}"


def summary_lines(report: MaintenanceReport) -> list[str]:
    """The report as short lines: the counts, then each recalibrated, failed or skipped node."""
    recalibrated = report.with_action(Action.RECALIBRATED)
    lines = [
        f"maintained {report.chip_id} (execution {report.execution_id}): "
        f"{len(report.checks)} checks ({report.check_points} points), "
        f"{len(recalibrated)} recalibrated, {len(report.with_action(Action.FAILED))} failed, "
        f"{len(report.with_action(Action.SKIPPED))} skipped; "
        + ("every value in spec" if report.in_spec else "NOT every value in spec")
    ]
    for node in report.nodes:
        if node.action is Action.KEPT:
            continue
        after = ""
        if node.back_in_spec is not None:
            after = " -> back in spec" if node.back_in_spec else " -> still out of spec"
        lines.append(f"  {node.action.value:12} {node.step} {node.target}{after}")
        lines.extend(f"      {reason}" for reason in node.why)
    return lines


def report_markdown(report: MaintenanceReport) -> str:
    """The report as the Markdown of the ``maintain`` artifact."""
    lines = [
        f"# Maintenance of {report.chip_id}",
        "",
        f"Execution `{report.execution_id}`, project `{report.project_id}`, epoch "
        f"{report.epoch}: {len(report.checks)} checks ({report.check_points} points), "
        f"{len(report.with_action(Action.RECALIBRATED))} steps recalibrated, "
        + ("every value in spec." if report.in_spec else "**not every value in spec**."),
        "",
        "| step | target | check | action | after | why |",
        "|---|---|---|---|---|---|",
    ]
    for node in report.nodes:
        check = node.check.verdict.value if node.check is not None else "—"
        after = node.verification.verdict.value if node.verification is not None else "—"
        why = "; ".join(node.why).replace("|", "\\|")
        lines.append(
            f"| {node.step} | {node.target} | {check} | {node.action.value} | {after} | {why} |"
        )
    if report.changes:
        lines += ["", "## Changed parameters", "", "| qid | parameter | before | after |"]
        lines.append("|---|---|---|---|")
        for change in report.changes:
            lines.append(
                f"| {change.qid} | {change.parameter_name} | {change.before} | {change.after} |"
            )
    return "\n".join(lines) + "\n"
