"""What the chip page reads besides provenance: the datasets a calibration measured.

A calibration's QCoDeS runs are tagged by the measurement context
(:func:`qops.calibration.instruments.measurement_context`) with the attributes
``execution_id`` and ``chip_id``, and the step's ``task`` and ``qubit``; once synced, the
catalog holds them as dataset attributes. :class:`CatalogCalibrationDatasets` finds them with
the catalog's own attribute search.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from qops.catalog.search import DatasetPage, DatasetQuery

MAX_DATASETS = 500
"""Most datasets listed for one execution (one page of the catalog search)."""


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


class DatasetSearch(Protocol):
    """What :class:`CatalogCalibrationDatasets` needs of the catalog
    (:class:`qops.catalog.search.CatalogQueryService`)."""

    def search(self, query: DatasetQuery, *, facets: bool = True) -> DatasetPage: ...


def _collected(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


class CatalogCalibrationDatasets:
    """Calibration datasets found by the catalog's search on the attribute ``execution_id``.

    Args:
        catalog: The catalog's query service.
    """

    def __init__(self, catalog: DatasetSearch) -> None:
        self.catalog = catalog

    def of_execution(self, execution_id: str) -> list[DatasetLink]:
        """The datasets whose attribute ``execution_id`` is ``execution_id`` (one search)."""
        query = DatasetQuery(attributes={"execution_id": execution_id}, limit=MAX_DATASETS)
        page = self.catalog.search(query, facets=False)
        links = [
            DatasetLink(
                uuid=record.uuid,
                name=record.name,
                task=record.attributes.get("task", ""),
                qid=record.attributes.get("qubit", ""),
                collected=_collected(record.collected),
            )
            for record in page.datasets
        ]
        return sorted(links, key=lambda link: (link.collected, link.task, link.qid))
