"""What a calibration run changed: the report, the parameter changes, and their rendering.

Pure functions of the report: the ``calibrate`` flow publishes :func:`change_rows` as a table
artifact and :func:`lineage_markdown` as a markdown artifact, under keys from
:func:`artifact_key`. Given the console's base URL (``QOPS_CONSOLE_URL``) both link each
parameter and the execution to their console pages; without one they carry no links.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from qops.calibration.plan import StepOutcome, StepResult
from qops.console_links import execution_url, markdown_link, parameter_url
from qops.provenance.models import ParameterVersion
from qops.provenance.service import delta_of, values_equal

Snapshot = tuple[str, str, float | int | str, str]
"""One current parameter value: ``(parameter_name, qid, value, unit)``."""


class CalibrationChange(BaseModel):
    """A parameter value before and after a calibration run.

    Not the ``/changes`` API's :class:`qops.provenance.models.ParameterChange` (one new
    version and its predecessor): this compares the chip's current values around one run.
    """

    parameter_name: str
    qid: str
    unit: str = ""
    before: float | int | str | None = None
    after: float | int | str | None = None
    delta: float | None = None
    delta_percent: float | None = None


def snapshot_of(versions: Iterable[ParameterVersion]) -> list[Snapshot]:
    """The ``(parameter_name, qid, value, unit)`` of each version, for :func:`changes_between`."""
    return [(v.parameter_name, v.qid, v.value, v.unit) for v in versions]


def changes_between(
    before: Iterable[Snapshot], after: Iterable[Snapshot]
) -> list[CalibrationChange]:
    """Compare ``(parameter_name, qid, value, unit)`` snapshots; only changed entries.

    ``delta`` is ``after - before`` for numbers; ``delta_percent`` relative to ``|before|``.
    """
    old = {(name, qid): value for name, qid, value, _ in before}
    changes: list[CalibrationChange] = []
    for name, qid, value, unit in after:
        previous = old.get((name, qid))
        if previous is not None and values_equal(previous, value, rel_tol=0.0):
            continue
        delta, delta_percent = delta_of(previous, value) if previous is not None else (None, None)
        changes.append(
            CalibrationChange(
                parameter_name=name,
                qid=qid,
                unit=unit,
                before=previous,
                after=value,
                delta=delta,
                delta_percent=delta_percent,
            )
        )
    return sorted(changes, key=lambda c: (c.qid, c.parameter_name))


class CalibrationReport(BaseModel):
    """What one ``calibrate`` run did."""

    execution_id: str
    project_id: str
    chip_id: str
    epoch: int
    database_path: str
    qubits: list[str]
    pairs: list[str]
    steps: list[StepResult]
    changes: list[CalibrationChange]

    @property
    def failed(self) -> list[StepResult]:
        """Steps that failed."""
        return [s for s in self.steps if s.outcome is StepOutcome.FAILED]

    @property
    def skipped(self) -> list[StepResult]:
        """Steps skipped because a prerequisite did not complete."""
        return [s for s in self.steps if s.outcome is StepOutcome.SKIPPED]


def artifact_key(report: CalibrationReport) -> str:
    """The stable kebab-case stem of the run's artifact keys (``calibration-<chip>``)."""
    return f"calibration-{report.chip_id}".lower().replace("_", "-")


def _fmt(value: float | int | str | None) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def change_rows(
    changes: Sequence[CalibrationChange], console_url: str | None = None
) -> list[dict[str, str]]:
    """The changes as table rows: parameter, qid, before, after, unit, delta, delta %.

    Args:
        changes: What the run changed.
        console_url: The console's base URL; the parameter cell then links (markdown) to the
            parameter's history page. ``None``: plain names.
    """
    return [
        {
            "parameter": markdown_link(
                c.parameter_name,
                parameter_url(console_url, c.parameter_name, c.qid) if console_url else None,
            ),
            "qid": c.qid,
            "before": _fmt(c.before),
            "after": _fmt(c.after),
            "unit": c.unit,
            "delta": _fmt(c.delta),
            "delta %": _fmt(c.delta_percent),
        }
        for c in changes
    ]


def lineage_markdown(report: CalibrationReport, console_url: str | None = None) -> str:
    """A markdown summary of the run: each step's outcome, new versions and inputs used.

    Args:
        report: The run.
        console_url: The console's base URL; the execution and each new version then link
            to their console pages. ``None``: no links.
    """

    def parameter(name: str, qid: str, text: str) -> str:
        return markdown_link(text, parameter_url(console_url, name, qid) if console_url else None)

    execution = f"`{report.execution_id}`"
    if console_url:
        execution = markdown_link(execution, execution_url(console_url, report.execution_id))
    lines = [
        f"# Calibration of {report.chip_id}",
        "",
        f"Execution {execution}, project `{report.project_id}`, epoch {report.epoch}.",
        "",
        "| step | target | outcome | new versions | used / reason |",
        "|---|---|---|---|---|",
    ]
    for s in report.steps:
        made = ", ".join(parameter(n, s.target, f"{n} v{v}") for n, v in s.versions.items())
        used = ", ".join(f"{n} v{v}" for n, v in s.used.items()) or s.reason
        lines.append(f"| {s.step} | {s.target} | {s.outcome.value} | {made} | {used} |")
    lines += [
        "",
        "Each new version `wasGeneratedBy` its step's activity and `wasDerivedFrom` the input "
        "versions the step used and the previous version of the same parameter: "
        "`qops provenance lineage <entity_id>` shows the chain.",
    ]
    return "\n".join(lines)
