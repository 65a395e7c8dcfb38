"""The one place where provenance ids are built and parsed.

- entity: ``{parameter_name}:{qid}:{execution_id}:{task_id}`` (a parameter version, the
  documented form); ``dataset:{guid}`` (a raw measurement, one QCoDeS run);
  ``dataset-file:{dataset_uuid}:v{version}`` (one version of a synced data file)
- activity: ``{execution_id}:{task_id}``
- relation: ``{relation_type}|{source_id}|{target_id}`` (the ``_id`` of a relation document,
  so a relation is stored once however often it is recorded)
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from qops.provenance.errors import InvalidEntityIdError

_SEPARATOR = ":"


class EntityIdParts(NamedTuple):
    """The four fields an entity id is made of."""

    parameter_name: str
    qid: str
    execution_id: str
    task_id: str


def _check_part(field: str, value: str) -> None:
    if not value:
        raise InvalidEntityIdError(value, f"{field} is empty")
    if _SEPARATOR in value:
        raise InvalidEntityIdError(value, f"{field} {value!r} contains {_SEPARATOR!r}")


def entity_id(parameter_name: str, qid: str, execution_id: str, task_id: str) -> str:
    """Return the entity id of the version of ``parameter_name`` written by one task run.

    Raises:
        InvalidEntityIdError: A part is empty or contains ``:``.
    """
    for field, value in (
        ("parameter_name", parameter_name),
        ("qid", qid),
        ("execution_id", execution_id),
        ("task_id", task_id),
    ):
        _check_part(field, value)
    return _SEPARATOR.join((parameter_name, qid, execution_id, task_id))


def parse_entity_id(value: str) -> EntityIdParts:
    """Split an entity id into its parts.

    Raises:
        InvalidEntityIdError: It does not have exactly four non-empty parts.
    """
    parts = value.split(_SEPARATOR)
    if len(parts) != 4:
        raise InvalidEntityIdError(value, f"has {len(parts)} ':'-separated parts, not 4")
    if not all(parts):
        raise InvalidEntityIdError(value, "has an empty part")
    return EntityIdParts(*parts)


DATASET_PREFIX = "dataset"
DATASET_FILE_PREFIX = "dataset-file"


class EntityKind(StrEnum):
    """What kind of PROV entity an entity id names."""

    PARAMETER = "parameter"
    """A version of a calibration parameter (``parameter_versions``)."""
    DATASET = "dataset"
    """A raw measurement: one QCoDeS run, keyed by its GUID (``provenance_entities``)."""
    DATASET_FILE = "dataset_file"
    """One version of a run's synced data file in the catalog (``provenance_entities``)."""


def dataset_entity_id(guid: str) -> str:
    """Return the entity id of the raw measurement (QCoDeS run) ``guid``: ``dataset:{guid}``.

    Raises:
        InvalidEntityIdError: ``guid`` is empty or contains ``:``.
    """
    _check_part("guid", guid)
    return f"{DATASET_PREFIX}{_SEPARATOR}{guid}"


def dataset_file_entity_id(dataset_uuid: str, version: int) -> str:
    """Return the entity id of version ``version`` of a catalog dataset's data file.

    Raises:
        InvalidEntityIdError: ``dataset_uuid`` is empty or contains ``:``, or ``version < 1``.
    """
    _check_part("dataset_uuid", dataset_uuid)
    if version < 1:
        raise InvalidEntityIdError(str(version), "a file version is 1 or more")
    return f"{DATASET_FILE_PREFIX}{_SEPARATOR}{dataset_uuid}{_SEPARATOR}v{version}"


def entity_kind(value: str) -> EntityKind:
    """Which kind of entity ``value`` names (by its form; nothing is looked up).

    Raises:
        InvalidEntityIdError: It is none of the three forms.
    """
    parts = value.split(_SEPARATOR)
    if len(parts) == 2 and parts[0] == DATASET_PREFIX and parts[1]:
        return EntityKind.DATASET
    if (
        len(parts) == 3
        and parts[0] == DATASET_FILE_PREFIX
        and parts[1]
        and parts[2][:1] == "v"
        and parts[2][1:].isdigit()
    ):
        return EntityKind.DATASET_FILE
    parse_entity_id(value)
    return EntityKind.PARAMETER


def activity_id(execution_id: str, task_id: str) -> str:
    """Return the id of one task run: ``{execution_id}:{task_id}``."""
    return f"{execution_id}{_SEPARATOR}{task_id}"


def relation_key(relation_type: str, source_id: str, target_id: str) -> str:
    """Return the deterministic ``_id`` of a relation document."""
    return f"{relation_type}|{source_id}|{target_id}"
