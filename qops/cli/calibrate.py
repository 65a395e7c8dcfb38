"""``qops calibrate``: one run of the ``calibrate`` flow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

QubitsOption = Annotated[
    str | None, typer.Option(help="Comma-separated qubits, e.g. Q0,Q1 (default: all).")
]
ProjectOption = Annotated[
    str | None, typer.Option(help="Provenance project (default: QOPS_PROJECT_ID).")
]
ChipOption = Annotated[
    str | None, typer.Option(help="Chip id (default: the backend config's, QOPS_CHIP_ID).")
]
ConfigOption = Annotated[
    Path | None, typer.Option(help="Backend YAML giving the chip's qubits and topology.")
]
DatabaseOption = Annotated[Path | None, typer.Option(help="QCoDeS database for the measurements.")]
SeedOption = Annotated[int, typer.Option(help="Seed of the simulated chip.")]
DEFAULT_SEED = 1234
"""``qops.calibration.plan.DEFAULT_SEED``, not imported here: that module pulls in QCoDeS, and
``--help`` should not wait for it."""
WaitOption = Annotated[
    float, typer.Option(help="Seconds to wait while another calibration of the chip runs.")
]
"""The options of a run on a chip, shared by ``qops calibrate`` and ``qops maintain``."""


def selected_qubits(qubits: str | None) -> list[str] | None:
    """The qubits of a ``--qubits Q0,Q1`` option; ``None``: all."""
    return [q for q in qubits.split(",") if q.strip()] if qubits else None


def calibrate(
    qubits: QubitsOption = None,
    project: ProjectOption = None,
    chip: ChipOption = None,
    config: ConfigOption = None,
    database: DatabaseOption = None,
    seed: SeedOption = DEFAULT_SEED,
    wait: WaitOption = 0.0,
) -> None:
    """Calibrate the (simulated) chip: measure, fit, record provenance, report changes."""
    from flows.calibrate import calibrate as calibrate_flow

    report = calibrate_flow(
        qubits=selected_qubits(qubits),
        project_id=project,
        chip_id=chip,
        backend_config=str(config) if config else None,
        database_path=str(database) if database else None,
        seed=seed,
        wait_s=wait,
    )
    typer.echo(
        f"calibrated {report.chip_id} ({', '.join(report.qubits)}) execution "
        f"{report.execution_id}: {len(report.steps) - len(report.failed) - len(report.skipped)} "
        f"steps completed, {len(report.failed)} failed, {len(report.skipped)} skipped"
    )
    for step in report.failed + report.skipped:
        typer.echo(f"  {step.outcome.value:9} {step.step} {step.target}: {step.reason}")
    for change in report.changes:
        typer.echo(
            f"  {change.qid:6} {change.parameter_name:18} {change.before!s:>22} -> "
            f"{change.after!s:<22} {change.unit}"
        )
    if report.failed:
        raise typer.Exit(1)
