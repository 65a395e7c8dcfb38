"""The provenance and chip pages' view models: rows, figures, Graphviz pictures, state."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest

from qops.backend.sources import CalibrationValue
from qops.backend.state import StateMarks
from qops.console.chip_views import chip_parameters, state_view
from qops.console.plotly_css import plotly_stylesheet, rules_of
from qops.console.provenance_views import (
    NODE_STYLES,
    entity_url,
    execution_rows,
    format_delta,
    format_value,
    graph_dot,
    history_figure,
    history_rows,
    render_svg,
)
from qops.protocol.messages import BackendState
from qops.provenance.ids import EntityKind
from qops.provenance.models import (
    ActivityStatus,
    ActivitySummary,
    DatasetEntity,
    DatasetFileEntity,
    EntitySummary,
    ExecutionSummary,
    GraphEdge,
    GraphNode,
    GraphResponse,
    NodeType,
    ParameterVersion,
    RelationType,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _version(
    version: int, value: float | int | str, error: float | None = None, qid: str = "Q0"
) -> ParameterVersion:
    return ParameterVersion(
        entity_id=f"t1:{qid}:exec-{version}:task-{version}",
        parameter_name="t1",
        qid=qid,
        value=value,
        value_type="str" if isinstance(value, str) else "float",
        unit="s",
        error=error,
        version=version,
        valid_from=T0 + timedelta(hours=version),
        valid_until=None,
        execution_id=f"exec-{version}",
        task_id=f"task-{version}",
        task_name="check-t1",
        project_id="p",
        chip_id="chip",
    )


def test_format_value_numbers_strings_and_non_finite() -> None:
    assert format_value(6.68844e-05) == "6.68844e-05"
    assert format_value(4_688_190_000.123) == "4.68819e+09"
    assert format_value(3) == "3"
    assert format_value("on") == "on"
    assert format_value(math.nan) == "NaN"
    assert format_value(-math.inf) == "-Infinity"
    assert format_value(None) == ""


def test_history_figure_plots_numeric_versions_oldest_first_with_error_bars() -> None:
    versions = [_version(3, 3e-5, 1e-6), _version(2, "broken"), _version(1, 1e-5, None)]
    figure = history_figure("t1", "Q0", versions)
    assert figure is not None
    (trace,) = figure["data"]
    assert trace["y"] == [1e-5, 3e-5]
    assert trace["error_y"]["array"] == [0.0, 1e-6]
    assert trace["x"] == [
        (T0 + timedelta(hours=1)).isoformat(),
        (T0 + timedelta(hours=3)).isoformat(),
    ]
    assert figure["layout"]["yaxis"]["title"]["text"] == "t1 (s)"


def test_history_figure_is_none_without_a_plottable_value() -> None:
    assert history_figure("t1", "Q0", [_version(1, "a"), _version(2, math.nan)]) is None


def test_history_rows_link_execution_and_entity_and_mark_current() -> None:
    (row,) = history_rows([_version(1, 2e-5, 1e-6)])
    assert row.value == "2e-05"
    assert row.error == "1e-06"
    assert row.valid_until == "current"
    assert row.execution_url == "/console/executions/exec-1"
    assert row.entity_url == "/console/entities/t1%3AQ0%3Aexec-1%3Atask-1?direction=lineage"


def test_entity_url_percent_encodes_lab_text() -> None:
    url = entity_url('a"<b>:q/0:e:t', "impact", 4)
    assert url == "/console/entities/a%22%3Cb%3E%3Aq%2F0%3Ae%3At?direction=impact&depth=4"


def _graph(parameter_name: str = "t1", value: float | str = 5e-5) -> GraphResponse:
    origin = GraphNode(
        node_type=NodeType.ENTITY,
        node_id=f"{parameter_name}:Q0:e2:t2",
        depth=0,
        entity=EntitySummary(
            parameter_name=parameter_name,
            qid="Q0",
            value=value,
            value_type="str" if isinstance(value, str) else "float",
            unit="s",
            version=2,
            task_name="check-t1",
            execution_id="e2",
        ),
    )
    activity = GraphNode(
        node_type=NodeType.ACTIVITY,
        node_id="e2:t2",
        depth=1,
        activity=ActivitySummary(
            task_name="check-t1",
            qid="Q0",
            status=ActivityStatus.COMPLETED,
            execution_id="e2",
            started_at=T0,
            ended_at=T0,
        ),
    )
    previous = GraphNode(node_type=NodeType.ENTITY, node_id=f"{parameter_name}:Q0:e1:t1", depth=1)
    return GraphResponse(
        direction="lineage",
        origin=origin,
        nodes=[activity, previous],
        edges=[
            GraphEdge(
                relation_type=RelationType.WAS_GENERATED_BY,
                source_id=origin.node_id,
                target_id=activity.node_id,
            ),
            GraphEdge(
                relation_type=RelationType.WAS_DERIVED_FROM,
                source_id=origin.node_id,
                target_id=previous.node_id,
            ),
        ],
        max_depth=2,
    )


def test_graph_dot_draws_nodes_with_links_and_relation_styles() -> None:
    source = graph_dot(_graph(), depth=2).source
    assert 'URL="/console/executions/e2"' in source
    assert 'URL="/console/entities/t1%3AQ0%3Ae1%3At1?direction=lineage&depth=2"' in source
    assert "shape=box" in source
    assert "style=solid" in source  # wasGeneratedBy
    assert "style=dotted" in source  # wasDerivedFrom
    assert "tooltip=wasGeneratedBy" in source


def _with_raw_measurement(name: str = "CheckT1") -> GraphResponse:
    """The graph of :func:`_graph` with the run the origin was fitted from and its file."""
    graph = _graph()
    raw = DatasetEntity(guid="g-1", name=name, run_id=7, source_db="C:\\lab\\fridge.db")
    file = DatasetFileEntity(
        dataset_uuid="u-1",
        guid="g-1",
        version=2,
        name="g-1.h5",
        location="/data/g-1.h5",
        md5="0" * 32,
        size=10,
        rows=61,
        complete=True,
        created=T0,
        source="lab",
    )
    nodes = [
        GraphNode(
            node_type=NodeType.ENTITY,
            node_id=raw.entity_id,
            depth=1,
            entity_type=EntityKind.DATASET,
            dataset=raw,
        ),
        GraphNode(
            node_type=NodeType.ENTITY,
            node_id=file.entity_id,
            depth=2,
            entity_type=EntityKind.DATASET_FILE,
            dataset_file=file,
        ),
    ]
    return graph.model_copy(update={"nodes": [*graph.nodes, *nodes]})


def test_graph_dot_draws_runs_and_file_versions_as_their_own_kinds() -> None:
    source = graph_dot(_with_raw_measurement(), depth=2).source
    run = next(line for line in source.splitlines() if "dataset%3Ag-1" in line)
    assert "shape=cylinder" in run
    assert f'fillcolor="{NODE_STYLES[EntityKind.DATASET].fill}"' in run
    assert 'class="entity dataset"' in run
    assert "CheckT1\\nrun 7 · fridge.db" in run  # the database file, not its folders
    assert 'URL="/console/entities/dataset%3Ag-1?direction=lineage&depth=2"' in run
    file = next(line for line in source.splitlines() if "dataset-file%3Au-1%3Av2" in line)
    assert "shape=note" in file
    assert 'class="entity dataset_file"' in file
    assert "g-1.h5\\nfile v2 · 61 rows" in file


def test_render_svg_escapes_markup_in_a_run_name() -> None:
    svg = str(render_svg(graph_dot(_with_raw_measurement("<img src=x>"), depth=1)))
    assert "<img" not in svg
    assert "&lt;img src=x&gt;" in svg


def test_render_svg_escapes_markup_labels_and_keeps_backslashes_and_entities() -> None:
    svg = str(render_svg(graph_dot(_graph('<b x="1">\\N', "&lt;script&gt;"), depth=1)))
    assert svg.startswith("<svg")
    assert "<b" not in svg
    assert re.search(r"&lt;b x=(&quot;|&#34;)1(&quot;|&#34;)&gt;\\\\?N", svg)
    assert "&amp;lt;script&amp;gt;" in svg  # shown as the text "&lt;script&gt;"
    assert "<!--" not in svg
    assert " style=" not in svg


def test_execution_rows_list_each_changed_parameter_once() -> None:
    summary = ExecutionSummary(execution_id="exec-1", started_at=T0, ended_at=None, task_count=3)
    versions = [_version(1, 1.0), _version(1, 2.0), _version(1, 1.0, qid="Q1")]
    (row,) = execution_rows([summary], versions)
    assert row.changed == ["t1 Q0", "t1 Q1"]
    assert row.ended_at == ""


def test_format_delta_with_and_without_percentage() -> None:
    assert format_delta(1500.0, 0.5) == "+1500 (+0.5 %)"
    assert format_delta(-2.0, None) == "-2"
    assert format_delta(None, None) == ""


def test_chip_parameters_split_qubits_and_pairs_in_natural_order() -> None:
    values = [
        CalibrationValue(parameter_name="t1", qid="Q10", value=1.0),
        CalibrationValue(parameter_name="t1", qid="Q2", value=2.0),
        CalibrationValue(parameter_name="t2_echo", qid="Q2", value=3.0),
        CalibrationValue(parameter_name="cz_fidelity", qid="Q2-Q10", value=0.99),
        CalibrationValue(parameter_name="odd", qid="coupler-a", value=1.0),
    ]
    tables = chip_parameters(values, [_version(1, 2.0, qid="Q2")])
    assert tables.qubits.parameters == ["t1", "t2_echo"]
    assert [qid for qid, _ in tables.qubits.rows] == ["Q2", "Q10"]
    q2 = tables.qubits.rows[0][1]
    assert q2[0] is not None
    assert (q2[0].value, q2[0].unit) == ("2", "s")
    assert q2[0].entity_url is not None
    q10 = tables.qubits.rows[1][1]
    assert q10[1] is None  # no t2_echo for Q10
    assert [qid for qid, _ in tables.pairs.rows] == ["Q2-Q10"]
    assert [v.qid for v in tables.other] == ["coupler-a"]


@pytest.mark.parametrize(
    ("marks", "state", "detail"),
    [
        (StateMarks(offline=False, leases=()), "IDLE", "ready"),
        (StateMarks(offline=False, leases=(BackendState.CALIBRATING,)), "CALIBRATING", "lease"),
        (StateMarks(offline=True, leases=(), reason="warm-up"), "OFFLINE", "warm-up"),
        (StateMarks(offline=True, leases=(BackendState.CALIBRATING,)), "OFFLINE", "no reason"),
        (None, "UNKNOWN", "no backend state store"),
    ],
)
def test_state_view_resolves_like_the_backend(
    marks: StateMarks | None, state: str, detail: str
) -> None:
    view = state_view(marks)
    assert view.state == state
    assert detail in view.detail


def test_plotly_rules_read_from_the_installed_plotly_js() -> None:
    css = plotly_stylesheet()
    assert ".js-plotly-plot .plotly .main-svg {position:absolute;top:0;left:0;" in css
    assert ".plotly-notifier .notifier-note {" in css


def test_rules_of_reads_quoted_selectors_and_bare_keys() -> None:
    script = 'var a={"X,X div":\'font-family:"Open Sans";\',"X a":"x:1;",Y:"z:2;"};for(b in a)'
    assert rules_of(script) == {
        ".js-plotly-plot .plotly,.js-plotly-plot .plotly div": 'font-family:"Open Sans";',
        ".js-plotly-plot .plotly a": "x:1;",
        ".plotly-notifier": "z:2;",
    }
    with pytest.raises(ValueError, match="no"):
        rules_of("var nothing = 1;")
