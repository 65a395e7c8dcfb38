"""``qops maintenance ...``: a chip's calibration health from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qops.cli.provenance import JsonOption, ProjectOption, open_service
from qops.maintenance.health import ChipHealth, HealthService
from qops.maintenance.policy import MaintenanceSettings, load_policy

app = typer.Typer(help="Keep chips calibrated: health and recommendations.", no_args_is_help=True)


def _print(report: ChipHealth) -> None:
    typer.echo(
        f"chip {report.chip_id} (project {report.project_id}) at "
        f"{report.generated_at.isoformat(timespec='seconds')}"
    )
    flagged = [p for p in report.parameters if p.findings]
    if not flagged:
        typer.echo(f"all {len(report.parameters)} parameters healthy; nothing to recalibrate")
        return
    typer.echo(f"{len(flagged)} of {len(report.parameters)} parameters need attention:")
    for health in flagged:
        findings = ", ".join(str(f) for f in health.findings)
        typer.echo(f"  {health.parameter_name} {health.qid}: {findings}")
        for reason in health.reasons:
            typer.echo(f"      {reason}")
    typer.echo("recommended steps, in calibration order:")
    for step in report.recommendations:
        typer.echo(f"  {step.step} on {step.target}: {step.reasons[0]}")
        for reason in step.reasons[1:]:
            typer.echo(f"      {reason}")


@app.command()
def health(
    chip: Annotated[str, typer.Option("--chip", help="The chip to judge.")],
    target: Annotated[
        list[str] | None,
        typer.Option("--target", help="A qubit or pair of the chip (repeatable)."),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy", help="Policy file (default QOPS_MAINTENANCE_POLICY, else built in)."
        ),
    ] = None,
    project_id: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stale, out-of-spec, degrading and missing parameters of CHIP, and the steps to run.

    Exits 1 when something needs recalibrating, 0 when the chip is healthy.
    """
    rules = load_policy(policy) if policy is not None else MaintenanceSettings().policy()
    with open_service() as service:
        report = HealthService(service, rules).chip_health(chip, project_id, target)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _print(report)
    if not report.healthy:
        raise typer.Exit(1)
