"""``qops provenance ...``: query calibration provenance from the command line."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import BaseModel
from pymongo.errors import PyMongoError

from qops.config import MongoSettings
from qops.errors import QopsError
from qops.mongo import database
from qops.provenance import integrity
from qops.provenance.config import ProvenanceSettings
from qops.provenance.integrity import Problem
from qops.provenance.models import GraphResponse
from qops.provenance.outbox import Outbox, outbox_path
from qops.provenance.recorder import ProvenanceRecorder
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from qops.provenance.values import json_safe

app = typer.Typer(help="Query calibration provenance (W3C PROV-DM).", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ProjectOption = Annotated[
    str | None, typer.Option("--project-id", help="Project (default QOPS_PROJECT_ID).")
]
ChipOption = Annotated[
    str | None, typer.Option("--chip", help="Only this chip's versions (default: every chip).")
]
DepthOption = Annotated[int, typer.Option("--max-depth", help="Hops to follow (capped at 50).")]


@contextlib.contextmanager
def open_service() -> Iterator[ProvenanceService]:
    """A service on the configured MongoDB (indexes ensured)."""
    repository = MongoProvenanceRepository(database(MongoSettings()))
    repository.ensure_indexes()
    yield ProvenanceService(repository, ProvenanceSettings().project_id)


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        safe = json_safe(value)
        return safe if isinstance(safe, str) else f"{value:.6g}"
    return str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[_text(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _json(model: BaseModel) -> None:
    typer.echo(model.model_dump_json(indent=2))


@app.command()
def history(
    parameter_name: str,
    qid: str,
    limit: Annotated[int, typer.Option(help="Most versions to show.")] = 20,
    project_id: ProjectOption = None,
    chip_id: ChipOption = None,
    as_json: JsonOption = False,
) -> None:
    """Versions of PARAMETER_NAME of QID, newest first."""
    with open_service() as service:
        result = service.history(parameter_name, qid, limit, project_id, chip_id)
    if as_json:
        _json(result)
        return
    _table(
        ["version", "value", "unit", "error", "valid_from", "valid_until", "task", "entity_id"],
        [
            [
                v.version,
                v.value,
                v.unit,
                v.error,
                v.valid_from.isoformat(),
                v.valid_until.isoformat() if v.valid_until else None,
                v.task_name,
                v.entity_id,
            ]
            for v in result.versions
        ],
    )
    typer.echo(f"{result.total_versions} versions in all")


def _print_graph(graph: GraphResponse) -> None:
    origin = graph.origin
    typer.echo(f"{graph.direction} of {origin.node_id} (max depth {graph.max_depth})")
    _table(
        ["depth", "type", "node_id", "name", "value"],
        [
            [
                n.depth,
                n.node_type.value,
                n.node_id,
                n.entity.parameter_name if n.entity else n.activity.task_name if n.activity else "",
                n.entity.value if n.entity else "",
            ]
            for n in graph.nodes
        ],
    )
    typer.echo(f"{len(graph.nodes)} nodes, {len(graph.edges)} edges")


def _graph_command(
    entity_id: str, max_depth: int, project_id: str | None, as_json: bool, *, downstream: bool
) -> None:
    with open_service() as service:
        query = service.impact if downstream else service.lineage
        graph = query(entity_id, max_depth, project_id)
    _json(graph) if as_json else _print_graph(graph)


@app.command()
def lineage(
    entity_id: str,
    max_depth: DepthOption = 5,
    project_id: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ancestors of ENTITY_ID: what generated it and what it was derived from."""
    _graph_command(entity_id, max_depth, project_id, as_json, downstream=False)


@app.command()
def impact(
    entity_id: str,
    max_depth: DepthOption = 5,
    project_id: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Descendants of ENTITY_ID: what used it and what that produced."""
    _graph_command(entity_id, max_depth, project_id, as_json, downstream=True)


@app.command()
def compare(
    execution_id_before: str,
    execution_id_after: str,
    rel_tol: Annotated[float, typer.Option(help="Relative tolerance for 'unchanged'.")] = 1e-9,
    project_id: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Parameters added, removed and changed between two executions."""
    with open_service() as service:
        result = service.compare(execution_id_before, execution_id_after, rel_tol, project_id)
    if as_json:
        _json(result)
        return
    rows: list[list[object]] = [
        ["added", a.parameter_name, a.qid, None, a.value_after, None, None]
        for a in result.added_parameters
    ]
    rows += [
        ["removed", r.parameter_name, r.qid, r.value_before, None, None, None]
        for r in result.removed_parameters
    ]
    rows += [
        [
            "changed",
            c.parameter_name,
            c.qid,
            c.value_before,
            c.value_after,
            c.delta,
            c.delta_percent,
        ]
        for c in result.changed_parameters
    ]
    _table(["change", "parameter", "qid", "before", "after", "delta", "delta_%"], rows)
    typer.echo(f"{result.unchanged_count} unchanged")


@app.command()
def changes(
    limit: Annotated[int, typer.Option(help="Most changes to show.")] = 20,
    within_hours: Annotated[float, typer.Option(help="Look back this many hours.")] = 24.0,
    project_id: ProjectOption = None,
    chip_id: ChipOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recent parameter changes, newest first."""
    with open_service() as service:
        result = service.changes(limit, within_hours, project_id, chip_id)
    if as_json:
        _json(result)
        return
    _table(
        ["valid_from", "parameter", "qid", "version", "previous", "value", "delta", "delta_%"],
        [
            [
                c.valid_from.isoformat(),
                c.parameter_name,
                c.qid,
                c.version,
                c.previous_value,
                c.value,
                c.delta,
                c.delta_percent,
            ]
            for c in result.changes
        ],
    )
    typer.echo(f"{result.total_count} changes within {within_hours:g} h")


@app.command()
def stats(project_id: ProjectOption = None, as_json: JsonOption = False) -> None:
    """Counts of what is recorded."""
    with open_service() as service:
        result = service.stats(project_id)
    if as_json:
        _json(result)
        return
    _table(
        ["what", "count"],
        [
            ["entities", result.total_entities],
            ["activities", result.total_activities],
            ["executions", result.total_executions],
            *([f"relations {k}", n] for k, n in result.relations_by_type.items()),
        ],
    )


@app.command()
def export(
    entity_id: str,
    max_depth: DepthOption = 5,
    direction: Annotated[
        str, typer.Option(help="lineage (ancestors) or impact (descendants).")
    ] = "lineage",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default stdout).")
    ] = None,
    project_id: ProjectOption = None,
) -> None:
    """The graph of ENTITY_ID as a W3C PROV-JSON document."""
    if direction not in ("lineage", "impact"):
        raise typer.BadParameter("must be lineage or impact", param_hint="--direction")
    chosen: Literal["lineage", "impact"] = "impact" if direction == "impact" else "lineage"
    with open_service() as service:
        document = service.export_prov_json(entity_id, max_depth, project_id, direction=chosen)
    text = json.dumps(document, indent=2)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n")
        typer.echo(f"wrote {output}")


@app.command()
def replay(
    show_dead: Annotated[
        bool, typer.Option("--dead-letters", help="Also list every dead-lettered record.")
    ] = False,
) -> None:
    """Write provenance records waiting in the local outbox to MongoDB, in order.

    A record that can never be written moves to the outbox's dead-letter table with its
    reason, and the replay goes on. Exits 1 if records still wait.
    """
    try:
        settings = MongoSettings()
        outbox = Outbox(outbox_path(settings.data_dir))
        waiting = outbox.pending()
        recorder = ProvenanceRecorder(lambda: MongoProvenanceRepository(database(settings)), outbox)
        written = recorder.replay()
        left = outbox.pending()
        dead = outbox.dead_letters() if show_dead else recorder.last_report.dead
    except (QopsError, PyMongoError, ValueError, OSError) as e:
        typer.echo(f"error: {type(e).__name__}: {e}", err=True)
        raise typer.Exit(1) from None
    for letter in dead:
        typer.echo(
            f"dead-lettered #{letter.seq} {letter.summary} after {letter.attempts} attempts: "
            f"{letter.reason}"
        )
    typer.echo(
        f"replayed {written} of {waiting} records; {len(recorder.last_report.dead)} "
        f"dead-lettered; {left} still waiting ({outbox.path})"
    )
    problem = recorder.last_unreachable or recorder.last_report.blocked
    if left:
        typer.echo(f"not drained: {problem or 'records appended meanwhile'}", err=True)
        raise typer.Exit(1)


def _local_recorder(settings: MongoSettings) -> ProvenanceRecorder:
    """This machine's recorder: its outbox holds the write-ahead journal."""
    repository = MongoProvenanceRepository(database(settings))
    return ProvenanceRecorder(lambda: repository, Outbox(outbox_path(settings.data_dir)))


def _print_problems(problems: Sequence[Problem]) -> None:
    for problem in problems:
        typer.echo(
            f"{problem.kind.value}  {problem.project_id}  {problem.subject}: {problem.detail}"
        )


@app.command()
def check(project_id: ProjectOption = None, as_json: JsonOption = False) -> None:
    """Report every broken provenance invariant; exit 1 if any (see docs/provenance.md).

    Open predecessors, a closed newest version, valid_until not equal to the successor's
    valid_from, gaps in version numbers, orphan versions (no wasGeneratedBy or activity),
    relations to missing nodes, and records this machine's writers left unfinished.
    Without --project-id every project is checked.
    """
    settings = MongoSettings()
    with open_service() as service:
        repository = service.repository
        assert isinstance(repository, MongoProvenanceRepository)
        report = integrity.check(repository, project_id, Outbox(outbox_path(settings.data_dir)))
    if as_json:
        _json(report)
    else:
        _print_problems(report.problems)
        typer.echo(
            f"checked {report.versions} versions, {report.activities} activities, "
            f"{report.relations} relations; {len(report.problems)} problems; "
            f"{report.waiting_records} records waiting in the outbox"
        )
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def repair(
    project_id: ProjectOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be done.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Fix what is safely fixable; report what was done and what is left; exit 1 if any left.

    Completes records this machine's writers left unfinished (from the journal, through the
    outbox) and sets the valid_until of open or mismatched predecessors to their
    successor's valid_from. Idempotent.
    """
    settings = MongoSettings()
    with open_service() as service:
        repository = service.repository
        assert isinstance(repository, MongoProvenanceRepository)
        report = integrity.repair(
            repository, project_id, _local_recorder(settings), dry_run=dry_run
        )
    if as_json:
        _json(report)
    else:
        verb = "would fix" if dry_run else "fixed"
        for action in report.actions:
            typer.echo(f"{verb} {action.kind.value}  {action.subject}: {action.action}")
        _print_problems(report.left)
        typer.echo(f"{len(report.actions)} {verb}; {len(report.left)} left")
    if report.left:
        raise typer.Exit(1)
