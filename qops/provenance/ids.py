"""The one place where provenance ids are built and parsed.

- entity: ``{parameter_name}:{qid}:{execution_id}:{task_id}``
- activity: ``{execution_id}:{task_id}``
- relation: ``{relation_type}|{source_id}|{target_id}`` (the ``_id`` of a relation document,
  so a relation is stored once however often it is recorded)
"""

from __future__ import annotations

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


def activity_id(execution_id: str, task_id: str) -> str:
    """Return the id of one task run: ``{execution_id}:{task_id}``."""
    return f"{execution_id}{_SEPARATOR}{task_id}"


def relation_key(relation_type: str, source_id: str, target_id: str) -> str:
    """Return the deterministic ``_id`` of a relation document."""
    return f"{relation_type}|{source_id}|{target_id}"
