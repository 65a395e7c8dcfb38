"""``qops maintain``: one run of the ``maintain`` flow (check, recalibrate what fails)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qops.cli.calibrate import (
    DEFAULT_SEED,
    ChipOption,
    ConfigOption,
    DatabaseOption,
    ProjectOption,
    QubitsOption,
    SeedOption,
    WaitOption,
    selected_qubits,
)


def maintain(
    qubits: QubitsOption = None,
    project: ProjectOption = None,
    chip: ChipOption = None,
    config: ConfigOption = None,
    database: DatabaseOption = None,
    seed: SeedOption = DEFAULT_SEED,
    wait: WaitOption = 0.0,
    policy: Annotated[
        Path | None,
        typer.Option(
            help="Maintenance policy file (default QOPS_MAINTENANCE_POLICY, else built in)."
        ),
    ] = None,
) -> None:
    """Check the chip step by step; recalibrate only what fails; report what and why.

    Exits 1 when a step failed, was skipped or is still out of spec afterwards.
    """
    from flows.maintain import maintain as maintain_flow
    from qops.maintenance.report import summary_lines

    report = maintain_flow(
        qubits=selected_qubits(qubits),
        project_id=project,
        chip_id=chip,
        backend_config=str(config) if config else None,
        database_path=str(database) if database else None,
        seed=seed,
        wait_s=wait,
        policy_file=str(policy) if policy else None,
    )
    for line in summary_lines(report):
        typer.echo(line)
    for change in report.changes:
        typer.echo(
            f"  {change.qid:6} {change.parameter_name:18} {change.before!s:>22} -> "
            f"{change.after!s:<22} {change.unit}"
        )
    if not report.in_spec:
        raise typer.Exit(1)
