"""The provenance store as the 2300 meta server's calibration source.

:class:`ProvenanceCalibrationSource` implements :class:`qops.backend.sources.CalibrationSource`
(the protocol the server owns) over a :class:`~qops.provenance.repository.ProvenanceRepository`:
get_dynamic reports the current version of every parameter of the chip, as recorded by the
calibration tasks. Only finite numbers are metrics; string values and NaN/±inf are left out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable

from pymongo.errors import PyMongoError

from qops.backend.errors import CalibrationUnavailableError
from qops.backend.sources import CalibrationValue
from qops.provenance.models import ParameterVersion
from qops.provenance.repository import ProvenanceRepository

logger = logging.getLogger(__name__)


def calibration_value(version: ParameterVersion) -> CalibrationValue | None:
    """The metric value of a parameter version; ``None`` for a string, NaN or ±inf value."""
    value = version.value
    if isinstance(value, str) or not math.isfinite(value):
        logger.debug(
            "%s of %s (version %d) not reported: %r is not a finite number",
            version.parameter_name,
            version.qid,
            version.version,
            value,
        )
        return None
    return CalibrationValue(parameter_name=version.parameter_name, qid=version.qid, value=value)


class ProvenanceCalibrationSource:
    """Current calibration values of a chip, read from the provenance store of a project.

    Each call reads the store, so a version recorded by a calibration task is reported by
    the next get_dynamic. ``parameters_version`` costs one small aggregation, letting the
    server reuse its encoded payload until a version is recorded.

    Args:
        repository: The provenance store (``MongoProvenanceRepository(db)``).
        project_id: The project whose versions are reported (e.g. ``QOPS_PROJECT_ID``).
    """

    def __init__(self, repository: ProvenanceRepository, project_id: str) -> None:
        self.repository = repository
        self.project_id = project_id

    def current_parameters(self, chip_id: str) -> list[CalibrationValue]:
        """Return the current value of every numeric parameter of ``chip_id`` (one query).

        Raises:
            CalibrationUnavailableError: The store could not be read.
        """
        try:
            versions = self.repository.current_versions(self.project_id, chip_id)
        except PyMongoError as e:
            raise CalibrationUnavailableError(chip_id, f"provenance store: {e}") from e
        return [value for value in map(calibration_value, versions) if value is not None]

    def parameters_version(self, chip_id: str) -> Hashable:
        """Return a stamp that changes whenever a version of ``chip_id`` is recorded.

        Raises:
            CalibrationUnavailableError: The store could not be read.
        """
        try:
            return self.repository.current_versions_stamp(self.project_id, chip_id)
        except PyMongoError as e:
            raise CalibrationUnavailableError(chip_id, f"provenance store: {e}") from e
