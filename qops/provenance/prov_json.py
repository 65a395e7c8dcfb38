"""Export of a provenance graph as a W3C PROV-JSON document.

Identifiers are stable: records are named by their qops ids under the ``qops`` prefix
(``urn:qops:``), relations by a hash of their type and ends, agents by type and name.
Times are ISO 8601 with an explicit UTC offset. Values are typed literals; non-finite
floats use the ``xsd:double`` lexical forms ``NaN``, ``INF`` and ``-INF``.
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib import resources
from typing import Any

from qops.provenance.models import (
    Activity,
    AgentType,
    DatasetEntity,
    GraphResponse,
    OtherEntity,
    ParameterVersion,
    RelationType,
)

NAMESPACE = "urn:qops:"
PREFIX = "qops"
MEDIA_TYPE = "application/prov+json"
"""The content type qops serves PROV-JSON documents with (``?format=prov-json``): JSON
(``+json``) in the PROV-JSON structure, distinct from the API's own ``application/json``."""
SCHEMA_NAME = "ProvJsonDocument"
"""The OpenAPI component schema of a PROV-JSON document (see :func:`openapi_schemas`)."""


def _component(name: str) -> str:
    return "ProvJson" + name[:1].upper() + name[1:]


def _relink(node: Any) -> Any:
    """The schema ``node`` with its ``$ref``s pointing at the OpenAPI components."""
    if isinstance(node, dict):
        relinked = {key: _relink(value) for key, value in node.items()}
        ref = node.get("$ref")
        if ref == "#":
            relinked["$ref"] = f"#/components/schemas/{SCHEMA_NAME}"
        elif isinstance(ref, str) and ref.startswith("#/definitions/"):
            relinked["$ref"] = "#/components/schemas/" + _component(ref.rsplit("/", 1)[1])
        return relinked
    if isinstance(node, list):
        return [_relink(item) for item in node]
    return node


def openapi_schemas() -> dict[str, dict[str, Any]]:
    """The PROV-JSON schema (``schemas/prov-json/prov-json.schema.json``) as OpenAPI components.

    The document is :data:`SCHEMA_NAME`; each of its definitions becomes ``ProvJson<Name>``
    (``entity`` -> ``ProvJsonEntity``), and every reference points at them, so the HTTP API
    declares the same structure the exports are tested against.
    """
    file = resources.files("schemas").joinpath("prov-json", "prov-json.schema.json")
    document: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    definitions: dict[str, Any] = document.pop("definitions", {})
    for keyword in ("$schema", "id", "$id"):
        document.pop(keyword, None)
    components = {_component(name): _relink(schema) for name, schema in definitions.items()}
    components[SCHEMA_NAME] = _relink(document)
    return components


def _qname(local: str) -> str:
    return f"{PREFIX}:{local}"


def _relation_id(kind: str, source: str, target: str) -> str:
    digest = hashlib.sha256(f"{kind}|{source}|{target}".encode()).hexdigest()[:24]
    return _qname(f"rel-{digest}")


def _literal(value: float | int | str) -> dict[str, str]:
    if isinstance(value, float):
        if math.isnan(value):
            text = "NaN"
        elif math.isinf(value):
            text = "INF" if value > 0 else "-INF"
        else:
            text = repr(value)
        return {"$": text, "type": "xsd:double"}
    if isinstance(value, int):
        return {"$": str(value), "type": "xsd:long"}
    return {"$": value, "type": "xsd:string"}


def _agent_id(agent_type: AgentType, name: str) -> str:
    return _qname(f"agent/{agent_type.value}/{name}")


def _other_attributes(other: OtherEntity) -> dict[str, Any]:
    """PROV-JSON attributes of a raw measurement or a synced file version."""
    if isinstance(other, DatasetEntity):
        attributes: dict[str, Any] = {
            "prov:type": {"$": "qops:QCoDeSRun", "type": "prov:QUALIFIED_NAME"},
            "prov:label": other.name,
            "qops:guid": other.guid,
        }
        optional = {
            "qops:run_id": other.run_id,
            "qops:source_db": other.source_db,
            "qops:experiment_name": other.experiment_name,
            "qops:sample_name": other.sample_name,
        }
        attributes.update({k: v for k, v in optional.items() if v is not None})
        return attributes
    return {
        "prov:type": {"$": "qops:DatasetFile", "type": "prov:QUALIFIED_NAME"},
        "prov:location": other.location,
        "prov:label": other.name,
        "qops:guid": other.guid,
        "qops:dataset_uuid": other.dataset_uuid,
        "qops:version": other.version,
        "qops:md5": other.md5,
        "qops:size": other.size,
        "qops:rows": other.rows,
        "qops:complete": other.complete,
        "qops:source": other.source,
        "qops:created": {"$": other.created.isoformat(), "type": "xsd:dateTime"},
    }


def to_prov_json(
    graph: GraphResponse,
    versions: dict[str, ParameterVersion],
    activities: dict[str, Activity],
    others: dict[str, OtherEntity] | None = None,
) -> dict[str, Any]:
    """Return ``graph`` as a PROV-JSON document (a JSON-ready dict).

    Args:
        graph: The lineage or impact graph.
        versions: Parameter versions of the graph's entity nodes, by entity id.
        activities: Activities of the graph's activity nodes, by activity id.
        others: Raw measurements and synced file versions of the graph, by entity id.
    """
    others = others or {}
    entity: dict[str, Any] = {}
    activity: dict[str, Any] = {}
    agent: dict[str, Any] = {}
    relations: dict[str, dict[str, Any]] = {
        "wasGeneratedBy": {},
        "used": {},
        "wasDerivedFrom": {},
        "wasAssociatedWith": {},
    }
    for node_id in [graph.origin.node_id, *(n.node_id for n in graph.nodes)]:
        if node_id in versions:
            v = versions[node_id]
            attributes: dict[str, Any] = {
                "prov:type": {"$": "qops:ParameterVersion", "type": "prov:QUALIFIED_NAME"},
                "prov:value": _literal(v.value),
                "qops:parameter_name": v.parameter_name,
                "qops:qid": v.qid,
                "qops:version": v.version,
                "qops:unit": v.unit,
                "qops:value_type": v.value_type,
                "qops:valid_from": {"$": v.valid_from.isoformat(), "type": "xsd:dateTime"},
                "qops:project_id": v.project_id,
                "qops:chip_id": v.chip_id,
            }
            if v.error is not None:
                attributes["qops:error"] = _literal(v.error)
            entity[_qname(node_id)] = attributes
        elif node_id in others:
            entity[_qname(node_id)] = _other_attributes(others[node_id])
        elif node_id in activities:
            a = activities[node_id]
            record: dict[str, Any] = {
                "prov:startTime": a.started_at.isoformat(),
                "prov:type": {
                    "$": "qops:SyncTask" if a.task_type == "sync" else "qops:CalibrationTask",
                    "type": "prov:QUALIFIED_NAME",
                },
                "qops:task_name": a.task_name,
                "qops:task_type": a.task_type,
                "qops:qid": a.qid,
                "qops:status": a.status.value,
                "qops:execution_id": a.execution_id,
            }
            if a.ended_at is not None:
                record["prov:endTime"] = a.ended_at.isoformat()
            activity[_qname(node_id)] = record
            if a.agent is None:  # the documented collection format records no agent
                continue
            agent_id = _agent_id(a.agent.agent_type, a.agent.name)
            agent[agent_id] = {
                "prov:type": {
                    "$": "prov:Person"
                    if a.agent.agent_type is AgentType.USER
                    else "prov:SoftwareAgent",
                    "type": "prov:QUALIFIED_NAME",
                },
                "prov:label": a.agent.name,
            }
            if a.agent.host is not None:
                agent[agent_id]["qops:host"] = a.agent.host
            relations["wasAssociatedWith"][_relation_id("assoc", node_id, agent_id)] = {
                "prov:activity": _qname(node_id),
                "prov:agent": agent_id,
            }
    for edge in graph.edges:
        source, target = _qname(edge.source_id), _qname(edge.target_id)
        rid = _relation_id(edge.relation_type.value, edge.source_id, edge.target_id)
        if edge.relation_type is RelationType.WAS_GENERATED_BY:
            relations["wasGeneratedBy"][rid] = {"prov:entity": source, "prov:activity": target}
        elif edge.relation_type is RelationType.USED:
            relations["used"][rid] = {"prov:activity": source, "prov:entity": target}
        else:
            relations["wasDerivedFrom"][rid] = {
                "prov:generatedEntity": source,
                "prov:usedEntity": target,
            }
    document: dict[str, Any] = {
        "prefix": {PREFIX: NAMESPACE},
        "entity": entity,
        "activity": activity,
        "agent": agent,
    }
    document.update({kind: records for kind, records in relations.items() if records})
    return document
