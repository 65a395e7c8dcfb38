"""Addresses of the console's pages, for links from reports the console does not serve.

Pure functions of the console's public base URL (``QOPS_CONSOLE_URL``, see
:class:`qops.console.settings.ConsoleSettings`): the calibration and sync reports link each
dataset, parameter, entity and execution they name to its page. The console links to the
Prefect UI's flow run pages with :func:`prefect_flow_run_url`. It sits in the lowest row
of the import layers so that every capability may use it without importing the console.
Each path segment is URL-quoted, so ids holding ``/``, ``?`` or ``#`` stay one segment.
"""

from __future__ import annotations

from urllib.parse import quote


def _segment(value: str) -> str:
    return quote(value, safe="")


def _join(base_url: str, *segments: str) -> str:
    return base_url.rstrip("/") + "/console/" + "/".join(_segment(s) for s in segments)


def dataset_url(base_url: str, dataset_uuid: str) -> str:
    """The page of a catalog dataset: ``<base>/console/datasets/{uuid}``."""
    return _join(base_url, "datasets", dataset_uuid)


def parameter_url(base_url: str, parameter_name: str, qid: str) -> str:
    """The history page of a parameter: ``<base>/console/parameters/{name}/{qid}``."""
    return _join(base_url, "parameters", parameter_name, qid)


def entity_url(base_url: str, entity_id: str) -> str:
    """The lineage page of a provenance entity: ``<base>/console/entities/{entity_id}``."""
    return _join(base_url, "entities", entity_id)


def execution_url(base_url: str, execution_id: str) -> str:
    """The page of a calibration execution: ``<base>/console/executions/{id}``."""
    return _join(base_url, "executions", execution_id)


def prefect_flow_run_url(prefect_ui_url: str, flow_run_id: str) -> str:
    """A flow run's page in the Prefect UI: ``<ui>/runs/flow-run/{id}``.

    Args:
        prefect_ui_url: The UI's base URL (``QOPS_PREFECT_UI_URL``, by default
            ``PREFECT_API_URL`` minus ``/api``).
        flow_run_id: The flow run (a calibration's execution id is its flow run's id).
    """
    return prefect_ui_url.rstrip("/") + "/runs/flow-run/" + _segment(flow_run_id)


def markdown_link(text: str, url: str | None) -> str:
    """``[text](url)`` in markdown (also inside a table cell); ``text`` unchanged without a URL.

    Characters that would end the link text or a table cell are escaped.
    """
    if url is None:
        return text
    escaped = text.replace("\\", "\\\\").replace("|", "\\|")
    escaped = escaped.replace("[", "\\[").replace("]", "\\]")
    # quote() leaves no space or parenthesis unescaped in the segments; the base is checked.
    return f"[{escaped}]({url.replace(')', '%29').replace(' ', '%20')})"
