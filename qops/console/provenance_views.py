"""What the provenance pages show, computed from provenance query results (no I/O but ``dot``).

Pure functions from :mod:`qops.provenance.models` results to rows, Plotly figures and the
Graphviz picture of a lineage or impact graph. Parameter names, qids, values and ids are
lab-controlled text: they reach the picture only as Graphviz labels, escaped so that
Graphviz neither reads them as HTML-like labels nor as escape sequences, and ``dot`` writes
them into the SVG as XML text; links are built from percent-encoded path segments.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import quote, urlencode

import graphviz
from markupsafe import Markup

from qops.catalog.models import DatasetRecord
from qops.provenance.ids import EntityKind
from qops.provenance.models import (
    DatasetEntity,
    DatasetFileEntity,
    ExecutionSummary,
    GraphNode,
    GraphResponse,
    NodeType,
    ParameterVersion,
    RelationType,
)
from qops.provenance.values import ParameterValue

Direction = Literal["lineage", "impact"]

MAX_LABEL = 48
"""Characters of a lab-controlled text shown in a node label (the full text is its tooltip)."""


def segment(text: str) -> str:
    """``text`` as one percent-encoded URL path segment (``/`` and ``:`` encoded too)."""
    return quote(text, safe="")


def parameter_url(parameter_name: str, qid: str, chip_id: str | None = None) -> str:
    """The history page of a parameter of a qid (of one chip's version chain, if given)."""
    page = f"/console/parameters/{segment(parameter_name)}/{segment(qid)}"
    return page if chip_id is None else f"{page}?{urlencode({'chip': chip_id})}"


def entity_url(entity_id: str, direction: Direction = "lineage", depth: int | None = None) -> str:
    """The page of one parameter version, with its lineage (or impact) picture."""
    query: dict[str, str | int] = {"direction": direction}
    if depth is not None:
        query["depth"] = depth
    return f"/console/entities/{segment(entity_id)}?{urlencode(query)}"


def execution_url(execution_id: str) -> str:
    """The page of one execution."""
    return f"/console/executions/{segment(execution_id)}"


def dataset_url(uuid: str) -> str:
    """The page of one catalog dataset."""
    return f"/console/datasets/{segment(uuid)}"


def quick_look_url(uuid: str) -> str:
    """The quick-look plot on the page of one catalog dataset."""
    return f"{dataset_url(uuid)}#quick-look"


def run_label(dataset: DatasetEntity) -> str:
    """A raw measurement as people name it: ``name (run 7)``; the GUID if it has neither."""
    if dataset.run_id is None:
        return dataset.name or dataset.guid
    return f"{dataset.name or 'run'} (run {dataset.run_id})"


@dataclass(frozen=True)
class CatalogLink:
    """A catalog dataset of a raw measurement: its page and, if it has a file, its plot."""

    scope: str
    url: str
    plot_url: str | None


@dataclass(frozen=True)
class RawMeasurement:
    """A raw measurement as the console shows it, with its catalog datasets (if synced)."""

    dataset: DatasetEntity
    label: str
    url: str
    catalog: list[CatalogLink]


def raw_measurement(dataset: DatasetEntity, records: Sequence[DatasetRecord]) -> RawMeasurement:
    """``dataset`` with links to its provenance page and to ``records``, its catalog datasets
    (none: not synced yet)."""
    return RawMeasurement(
        dataset=dataset,
        label=run_label(dataset),
        url=entity_url(dataset.entity_id),
        catalog=[
            CatalogLink(
                scope=r.scope,
                url=dataset_url(r.uuid),
                plot_url=quick_look_url(r.uuid) if r.files else None,
            )
            for r in records
        ],
    )


def format_value(value: ParameterValue | None) -> str:
    """A recorded value as shown in tables: numbers with 6 significant digits."""
    if value is None:
        return ""
    if isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return f"{value:.6g}"


def format_time(moment: datetime | None) -> str:
    """A UTC time as ``YYYY-MM-DD HH:MM:SS UTC``; empty for ``None``."""
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


# --- parameter history ---------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    """One row of the history table of a parameter."""

    version: int
    value: str
    error: str
    unit: str
    valid_from: str
    valid_until: str
    execution_id: str
    execution_url: str
    task_name: str
    entity_url: str
    chip_id: str


def history_rows(versions: Sequence[ParameterVersion]) -> list[HistoryRow]:
    """The table rows of a parameter's versions, in the given order (newest first)."""
    return [
        HistoryRow(
            version=v.version,
            value=format_value(v.value),
            error=format_value(v.error),
            unit=v.unit,
            valid_from=format_time(v.valid_from),
            valid_until=format_time(v.valid_until) or "current",
            execution_id=v.execution_id,
            execution_url=execution_url(v.execution_id),
            task_name=v.task_name,
            entity_url=entity_url(v.entity_id),
            chip_id=v.chip_id,
        )
        for v in versions
    ]


def _plotted(value: ParameterValue) -> float | None:
    if isinstance(value, (bool, str)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def history_figure(
    parameter_name: str, qid: str, versions: Sequence[ParameterVersion]
) -> dict[str, object] | None:
    """A Plotly figure of the numeric versions' values with error bars over ``valid_from``.

    Oldest first; versions whose value is a string, NaN or infinite are left out, and a
    missing or non-finite error is drawn as no bar. ``None`` if no version is plottable.
    """
    points = [
        (v, number)
        for v in sorted(versions, key=lambda v: v.version)
        if (number := _plotted(v.value)) is not None
    ]
    if not points:
        return None
    unit = next((v.unit for v, _ in reversed(points) if v.unit), "")
    errors = [v.error if v.error is not None and math.isfinite(v.error) else 0.0 for v, _ in points]
    trace: dict[str, object] = {
        "type": "scatter",
        "mode": "lines+markers",
        "name": f"{parameter_name} {qid}",
        "x": [v.valid_from.isoformat() for v, _ in points],
        "y": [number for _, number in points],
        "error_y": {"type": "data", "array": errors, "visible": True},
        "text": [f"version {v.version}" for v, _ in points],
        "hovertemplate": "%{text}<br>%{x}<br>%{y}<extra></extra>",
    }
    layout: dict[str, object] = {
        "margin": {"l": 70, "r": 20, "t": 20, "b": 50},
        "xaxis": {"title": {"text": "valid from (UTC)"}, "type": "date"},
        "yaxis": {
            "title": {"text": f"{parameter_name} ({unit})" if unit else parameter_name},
            "exponentformat": "SI",
        },
        "showlegend": False,
    }
    return {"data": [trace], "layout": layout}


# --- lineage and impact pictures -----------------------------------------------------


@dataclass(frozen=True)
class EdgeStyle:
    """How one relation kind is drawn (and shown in the legend)."""

    relation: RelationType
    color: str
    style: Literal["solid", "dashed", "dotted"]
    meaning: str


EDGE_STYLES: dict[RelationType, EdgeStyle] = {
    RelationType.WAS_GENERATED_BY: EdgeStyle(
        RelationType.WAS_GENERATED_BY,
        "#1f6fb2",
        "solid",
        "entity → the task run or sync that wrote it",
    ),
    RelationType.USED: EdgeStyle(
        RelationType.USED, "#c0392b", "dashed", "activity → an input version or run it read"
    ),
    RelationType.WAS_DERIVED_FROM: EdgeStyle(
        RelationType.WAS_DERIVED_FROM,
        "#6b6b6b",
        "dotted",
        "entity → an input, the run it was fitted from, the previous version",
    ),
}
"""Colour and line of each relation kind, shared by the picture and its legend."""


@dataclass(frozen=True)
class NodeStyle:
    """How one kind of node is drawn (and shown in the legend)."""

    kind: str
    shape: str
    fill: str
    meaning: str


NODE_STYLES: dict[EntityKind | NodeType, NodeStyle] = {
    EntityKind.PARAMETER: NodeStyle("parameter", "ellipse", "#fdf3c4", "parameter version"),
    EntityKind.DATASET: NodeStyle("dataset", "cylinder", "#cdebd3", "raw measurement (QCoDeS run)"),
    EntityKind.DATASET_FILE: NodeStyle(
        "dataset_file", "note", "#e4d9f2", "synced data file version"
    ),
    NodeType.ACTIVITY: NodeStyle("activity", "box", "#cfe3f7", "task run or sync (activity)"),
}
"""Shape and fill of each node kind, shared by the picture and its legend."""

_ORIGIN_FILL = "#ffe08a"


def _label_text(text: str) -> str:
    """Cut a lab-controlled text to :data:`MAX_LABEL` characters."""
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _safe(text: str) -> str:
    """A Graphviz attribute value taken literally: no HTML-like label, no ``\\N`` escapes,
    no character entities."""
    # dot reads character entities in labels (``&amp;`` would show as ``&``): keep them.
    escaped: str = graphviz.escape(text.replace("&", "&amp;"))
    return escaped


def _label(lines: Sequence[str]) -> str:
    """A node label of lines, each taken literally, joined by dot's centred line breaks."""
    label: str = graphviz.nohtml("\\n".join(_safe(_label_text(line)) for line in lines))
    return label


def _node_style(node: GraphNode) -> NodeStyle:
    if node.node_type is NodeType.ACTIVITY:
        return NODE_STYLES[NodeType.ACTIVITY]
    return NODE_STYLES[node.entity_type or EntityKind.PARAMETER]


def _node_class(node: GraphNode, origin: bool) -> str:
    """The SVG class of a node: ``origin``, ``entity`` or ``activity``, then ``dataset`` or
    ``dataset_file`` for the non-parameter entities (so pages and tests can select them)."""
    kind = "origin" if origin else node.node_type.value
    extra = node.entity_type if node.entity_type not in (None, EntityKind.PARAMETER) else None
    return kind if extra is None else f"{kind} {extra.value}"


def _dataset_lines(dataset: DatasetEntity) -> list[str]:
    where = dataset.source_db.replace("\\", "/").rsplit("/", 1)[-1] if dataset.source_db else ""
    run = "run" if dataset.run_id is None else f"run {dataset.run_id}"
    return [dataset.name or dataset.guid, f"{run} · {where}" if where else run]


def _file_lines(file: DatasetFileEntity) -> list[str]:
    return [file.name, f"file v{file.version} · {file.rows} rows"]


def _entity_lines(node: GraphNode) -> list[str]:
    if node.dataset is not None:
        return _dataset_lines(node.dataset)
    if node.dataset_file is not None:
        return _file_lines(node.dataset_file)
    summary = node.entity
    if summary is None:
        return [node.node_id]
    value = format_value(summary.value)
    unit = f" {summary.unit}" if summary.unit else ""
    return [
        f"{summary.parameter_name} {summary.qid} v{summary.version}",
        f"{value}{unit}",
    ]


def execution_of_activity(activity_id: str) -> str:
    """The execution part of an activity id ``{execution_id}:{task_id}``."""
    return activity_id.split(":", 1)[0]


def _activity_lines(node: GraphNode) -> list[str]:
    summary = node.activity
    if summary is None:
        return [node.node_id]
    return [f"{summary.task_name} {summary.qid}", f"{summary.status.value}"]


def _node_url(node: GraphNode, direction: Direction, depth: int) -> str:
    if node.node_type is NodeType.ENTITY:
        return entity_url(node.node_id, direction, depth)
    execution = (
        node.activity.execution_id
        if node.activity is not None
        else execution_of_activity(node.node_id)
    )
    return execution_url(execution)


def graph_dot(graph: GraphResponse, depth: int) -> graphviz.Digraph:
    """The Graphviz graph of a lineage or impact answer.

    Each node kind has the shape and fill of :data:`NODE_STYLES` (parameter versions are
    ellipses, raw measurements cylinders, file versions notes, activities boxes; the origin
    is filled darker and outlined thicker); each relation kind has the colour and line of
    :data:`EDGE_STYLES`. Every node links to its page: entities to their entity page (same
    direction and depth; a raw measurement's links on to its catalog dataset), activities
    to their execution.
    """
    dot = graphviz.Digraph(name="provenance", engine="dot")
    dot.attr(rankdir="LR", bgcolor="transparent", fontname="Helvetica", nodesep="0.25")
    dot.attr("node", fontname="Helvetica", fontsize="11", style="filled", penwidth="1")
    dot.attr("edge", fontname="Helvetica", fontsize="9", arrowsize="0.7")
    names: dict[str, str] = {}
    for index, node in enumerate([graph.origin, *graph.nodes]):
        name = f"n{index}"
        names[node.node_id] = name
        is_entity = node.node_type is NodeType.ENTITY
        lines = _entity_lines(node) if is_entity else _activity_lines(node)
        node_style = _node_style(node)
        origin = node is graph.origin
        dot.node(
            name,
            label=_label(lines),
            tooltip=_safe(node.node_id),
            URL=_node_url(node, graph.direction, depth),
            target="_top",
            shape=node_style.shape,
            fillcolor=_ORIGIN_FILL if origin else node_style.fill,
            id=f"node_{index}",
            **{"class": _node_class(node, origin)},
            **({"penwidth": "2"} if origin else {}),
        )
    for edge in graph.edges:
        source, target = names.get(edge.source_id), names.get(edge.target_id)
        if source is None or target is None:
            continue
        style = EDGE_STYLES[edge.relation_type]
        dot.edge(
            source,
            target,
            color=style.color,
            style=style.style,
            tooltip=style.relation.value,
        )
    return dot


_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def render_svg(dot: graphviz.Digraph) -> Markup:
    """Lay the graph out with Graphviz ``dot`` and return its SVG for embedding in a page.

    The XML prolog, doctype and comments are dropped. The SVG is markup written by ``dot``,
    in which every label, tooltip and link is XML-escaped by ``dot`` itself; it is the one
    value a page embeds unescaped.

    Raises:
        graphviz.ExecutableNotFound: Graphviz's ``dot`` is not installed.
    """
    svg = dot.pipe(format="svg", encoding="utf-8")
    svg = _COMMENT.sub("", _PROLOG.sub("", svg, count=1))
    return Markup(svg)


@dataclass(frozen=True)
class NodeRow:
    """A node of a graph as a row of the table below the picture."""

    kind: str
    label: str
    depth: int
    url: str


def node_rows(graph: GraphResponse, depth: int) -> list[NodeRow]:
    """Every node of the graph with its link, for the list under the picture."""
    rows = []
    for node in graph.nodes:
        is_entity = node.node_type is NodeType.ENTITY
        lines = _entity_lines(node) if is_entity else _activity_lines(node)
        rows.append(
            NodeRow(
                kind=_node_style(node).meaning,
                label=" · ".join(lines),
                depth=node.depth,
                url=_node_url(node, graph.direction, depth),
            )
        )
    return rows


# --- executions ----------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionRow:
    """One row of the recent executions table."""

    execution_id: str
    url: str
    started_at: str
    ended_at: str
    task_count: int
    changed: list[str]


def execution_rows(
    executions: Sequence[ExecutionSummary], versions: Sequence[ParameterVersion]
) -> list[ExecutionRow]:
    """Rows of the executions table: each with the parameters its versions changed.

    ``versions`` are the versions written by these executions (any order); a parameter is
    listed once per execution as ``name qid``, sorted.
    """
    changed: dict[str, set[str]] = {}
    for version in versions:
        changed.setdefault(version.execution_id, set()).add(
            f"{version.parameter_name} {version.qid}"
        )
    return [
        ExecutionRow(
            execution_id=e.execution_id,
            url=execution_url(e.execution_id),
            started_at=format_time(e.started_at),
            ended_at=format_time(e.ended_at),
            task_count=e.task_count,
            changed=sorted(changed.get(e.execution_id, set())),
        )
        for e in executions
    ]


def format_delta(delta: float | None, percent: float | None) -> str:
    """A change as ``+1.2e+03 (+0.5 %)``; empty if there is no numeric delta."""
    if delta is None:
        return ""
    text = f"{delta:+.4g}"
    if percent is not None:
        text += f" ({percent:+.3g} %)"
    return text
