"""What the chip page reads besides provenance: the datasets a calibration measured.

A calibration's QCoDeS runs are tagged by the measurement context
(:func:`qops.calibration.instruments.measurement_context`) with the attributes
``execution_id`` and ``chip_id``, and the step's ``task`` and ``qubit``; once synced, the
catalog holds them as dataset attributes. :class:`CatalogCalibrationDatasets` finds them there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from qops.catalog.repository import DatasetRepository
from qops.mongo import Document

MAX_DATASETS = 500
"""Most datasets listed for one execution."""


@dataclass(frozen=True)
class DatasetLink:
    """A catalog dataset measured by a calibration, as the console links it."""

    uuid: str
    name: str
    task: str
    qid: str
    collected: str

    @property
    def url(self) -> str:
        """The dataset's console page."""
        return f"/console/datasets/{self.uuid}"


class CalibrationDatasets(Protocol):
    """The catalog datasets a calibration execution measured."""

    def of_execution(self, execution_id: str) -> list[DatasetLink]:
        """The datasets tagged with ``execution_id``, by task and qid."""
        ...


def _collected(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


class CatalogCalibrationDatasets:
    """Calibration datasets in the catalog's ``datasets`` collection.

    Args:
        db: The qops database.
    """

    def __init__(self, db: Database[Document]) -> None:
        self.collection: Collection[Document] = DatasetRepository(db).collection
        self._indexed = False

    def of_execution(self, execution_id: str) -> list[DatasetLink]:
        """The datasets whose attribute ``execution_id`` is ``execution_id`` (one query)."""
        if not self._indexed:
            # Serves of_execution: the datasets of one calibration execution.
            self.collection.create_index([("attributes.execution_id", ASCENDING)])
            self._indexed = True
        found = self.collection.find(
            {"attributes.execution_id": {"$eq": execution_id}},
            {"uuid": 1, "name": 1, "attributes": 1, "collected": 1},
        ).limit(MAX_DATASETS)
        links = []
        for document in found:
            attributes = document.get("attributes") or {}
            links.append(
                DatasetLink(
                    uuid=str(document.get("uuid") or document["_id"]),
                    name=str(document.get("name", "")),
                    task=str(attributes.get("task", "")),
                    qid=str(attributes.get("qubit", "")),
                    collected=_collected(document.get("collected")),
                )
            )
        return sorted(links, key=lambda link: (link.collected, link.task, link.qid))
