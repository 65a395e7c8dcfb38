"""Catalog metadata of a QCoDeS run: a pure function of what the run stores and the source config.

Mapping (see the catalog's ``datasets`` collection):

- ``name``: first line of the run name; further lines start ``description``;
- ``description``: also names the database file, run id, guid and experiment;
- ``collected``: ``run_timestamp`` as UTC;
- ``tags``: labels of the measured and setpoint parameters, names of the instruments that
  took part in the measurement, ``qh_meta`` tags (deduplicated, sorted);
- ``attributes``: settings of the instruments that took part (``instrument.parameter`` =
  value with unit), sample name, ``set-up``, the source's static attributes, then the
  run metadata (``add_metadata`` keys but ``inspectr_tag``, values as text), then the
  ``qh_meta`` attributes (which override the source's; each stored as its value: a
  parameter's snapshot as its value with unit, other non-text values as JSON text);
- ``ranking``: ``inspectr_tag`` metadata, ``star`` +1, ``cross`` -1, else 0.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from qops.catalog.models import DatasetMetadata
from qops.qcodes.errors import RunReadError
from qops.qcodes.reader import RunInfo
from qops.timeutil import from_timestamp

logger = logging.getLogger(__name__)

QH_META_NAME = "qh_meta"
"""Name of the :class:`~qops.qcodes.instrument.QHMetaData` instrument in the station."""
RANKING_KEY = "inspectr_tag"
"""Run metadata key of the star/cross mark (the dataset's ``ranking``)."""


def parse_snapshot(info: RunInfo, path: str) -> dict[str, Any]:
    """Return the run's snapshot as a dict (empty when the run has none).

    Raises:
        RunReadError: The snapshot is not a JSON object.
    """
    if not info.snapshot_raw:
        return {}
    try:
        snapshot = json.loads(info.snapshot_raw)
    except json.JSONDecodeError as e:
        raise RunReadError(path, info.run_id, "snapshot", f"not JSON ({e})") from e
    if snapshot is None:
        return {}
    if not isinstance(snapshot, dict):
        raise RunReadError(
            path,
            info.run_id,
            "snapshot",
            f"expected a JSON object, found {type(snapshot).__name__}",
        )
    return snapshot


def _instruments(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    station = snapshot.get("station")
    if not isinstance(station, dict):
        return {}
    instruments = station.get("instruments")
    return instruments if isinstance(instruments, dict) else {}


def _parameters(instrument: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(dotted name, parameter snapshot)`` for an instrument and its submodules."""
    parameters = instrument.get("parameters")
    if isinstance(parameters, dict):
        for name, parameter in parameters.items():
            if isinstance(parameter, dict):
                yield f"{prefix}.{name}", parameter
    submodules = instrument.get("submodules")
    if isinstance(submodules, dict):
        for name, submodule in submodules.items():
            if isinstance(submodule, dict):
                yield from _parameters(submodule, f"{prefix}.{name}")


def _format_value(parameter: Mapping[str, Any]) -> str:
    value = parameter.get("value")
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    unit = parameter.get("unit")
    return f"{text} {unit}" if unit else text


def _participating(instruments: Mapping[str, Any], names: set[str]) -> list[str]:
    """Return the instruments owning one of the run's parameters (by full name)."""
    taking_part = []
    for instrument_name, instrument in instruments.items():
        if instrument_name == QH_META_NAME or not isinstance(instrument, dict):
            continue
        for _, parameter in _parameters(instrument, instrument_name):
            if parameter.get("full_name") in names:
                taking_part.append(instrument_name)
                break
    return taking_part


def _meta_text(value: object) -> str | None:
    """Return a ``qh_meta`` tag or attribute value as text (None: no value).

    Text stays as it is; a parameter's snapshot (a dict with ``value``, as the eTiKeT
    metadata manager records a parameter) is its value with its unit, like an instrument
    setting; any other value is its JSON text.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "value" in value:
        return None if value["value"] is None else _format_value(value)
    return json.dumps(value, default=str)


def _qh_meta(instruments: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    meta = instruments.get(QH_META_NAME)
    if not isinstance(meta, dict):
        return [], {}
    parameters = meta.get("parameters")
    if not isinstance(parameters, dict):
        return [], {}
    tags_value = (parameters.get("tags") or {}).get("value") or []
    attributes_value = (parameters.get("attributes") or {}).get("value") or {}
    if isinstance(tags_value, str):
        tags_value = [tags_value]
    tags = [t for t in map(_meta_text, tags_value) if t] if isinstance(tags_value, list) else []
    attributes: dict[str, str] = {}
    if isinstance(attributes_value, dict):
        for key, value in attributes_value.items():
            text = _meta_text(value)
            if text is not None:
                attributes[str(key)] = text
    return tags, attributes


def ranking_of(metadata: Mapping[str, object]) -> int:
    """Return +1 for an ``inspectr_tag`` of ``star``, -1 for ``cross``, else 0."""
    tag = str(metadata.get(RANKING_KEY, "")).strip().lower()
    return {"star": 1, "cross": -1}.get(tag, 0)


def extract_metadata(
    info: RunInfo,
    snapshot: Mapping[str, Any],
    *,
    database_path: Path,
    set_up: str,
    static_attributes: Mapping[str, str],
) -> DatasetMetadata:
    """Return the catalog metadata of a run.

    Args:
        info: The run's stored fields.
        snapshot: Its parsed snapshot (see :func:`parse_snapshot`).
        database_path: The database file, named in the description.
        set_up: The experimental set-up, stored as the ``set-up`` attribute.
        static_attributes: The source's static attributes.
    """
    describer = info.describer(str(database_path))
    specs = describer.interdeps.paramspecs
    lines = info.name.splitlines() or [""]
    details = (
        f"QCoDeS run {info.run_id} of {database_path.name}, guid {info.guid}, "
        f"experiment {info.exp_name}"
    )
    description = "\n".join([*lines[1:], details]).strip()

    instruments = _instruments(snapshot)
    taking_part = _participating(instruments, {spec.name for spec in specs})
    meta_tags, meta_attributes = _qh_meta(instruments)

    tags = {spec.label or spec.name for spec in specs}
    tags.update(taking_part)
    tags.update(meta_tags)

    attributes: dict[str, str] = {}
    for instrument_name in taking_part:
        for dotted, parameter in _parameters(instruments[instrument_name], instrument_name):
            if "value" in parameter:
                attributes[dotted] = _format_value(parameter)
    if info.sample_name:
        attributes["sample"] = info.sample_name
    attributes["set-up"] = set_up
    attributes.update(static_attributes)
    # Run metadata (``add_metadata``, also the file's attributes); the star/cross tag is
    # the ranking.
    attributes.update(
        {key: str(value) for key, value in info.metadata.items() if key != RANKING_KEY}
    )
    attributes.update(meta_attributes)

    collected = (
        from_timestamp(info.run_timestamp_raw) if info.run_timestamp_raw is not None else None
    )
    return DatasetMetadata(
        name=lines[0].strip(),
        description=description,
        collected=collected,
        tags=sorted(t for t in tags if t),
        attributes=attributes,
        ranking=ranking_of(info.metadata),
    )
