"""Build the xarray dataset of a run from what :class:`~qops.qcodes.reader.QcodesReader` read.

The layout (coordinates, grids, multi-index for scattered setpoints, merging of several
dependents, attributes) is QCoDeS's own: its pure conversion function
``load_to_xarray_dataset`` is given a read-only view of the run built from the rows the
reader fetched, so the result equals ``DataSet.to_xarray_dataset()`` without opening the
database through QCoDeS (which would upgrade older schemas in place).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from qcodes.dataset.descriptions.param_spec import ParamSpec
from qcodes.dataset.descriptions.rundescriber import RunDescriber
from qcodes.dataset.descriptions.versioning.converters import new_to_old
from qcodes.dataset.exporters.export_to_xarray import load_to_xarray_dataset
from qcodes.dataset.linked_datasets.links import Link, str_to_links

from qops.qcodes.errors import RunReadError
from qops.qcodes.reader import ParameterData, RunInfo

if TYPE_CHECKING:
    import xarray as xr
    from qcodes.dataset.data_set_protocol import DataSetProtocol


def _format_time(raw: float | None, fmt: str) -> str | None:
    return None if raw is None else time.strftime(fmt, time.localtime(raw))


class RunView:
    """What the QCoDeS xarray exporter reads of a dataset, from a :class:`RunInfo`."""

    def __init__(self, info: RunInfo, describer: RunDescriber, path: str) -> None:
        self.info = info
        self.description = describer
        self.path = path

    @property
    def run_id(self) -> int:
        return self.info.run_id

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def guid(self) -> str:
        return self.info.guid

    @property
    def exp_name(self) -> str:
        return self.info.exp_name

    @property
    def sample_name(self) -> str:
        return self.info.sample_name

    @property
    def captured_run_id(self) -> int:
        return self.info.captured_run_id

    @property
    def captured_counter(self) -> int:
        return self.info.captured_counter

    @property
    def _snapshot_raw(self) -> str | None:
        return self.info.snapshot_raw

    @property
    def run_timestamp_raw(self) -> float | None:
        return self.info.run_timestamp_raw

    @property
    def completed_timestamp_raw(self) -> float | None:
        return self.info.completed_timestamp_raw

    def run_timestamp(self, fmt: str = "%Y-%m-%d %H:%M:%S") -> str | None:
        return _format_time(self.info.run_timestamp_raw, fmt)

    def completed_timestamp(self, fmt: str = "%Y-%m-%d %H:%M:%S") -> str | None:
        return _format_time(self.info.completed_timestamp_raw, fmt)

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.info.metadata)

    @property
    def parent_dataset_links(self) -> list[Link]:
        raw = self.info.parent_datasets
        if not raw:
            return []
        try:
            return str_to_links(raw)
        except (ValueError, TypeError, KeyError) as e:
            raise RunReadError(self.path, self.run_id, "parent_datasets", str(e)) from e

    @property
    def paramspecs(self) -> dict[str, ParamSpec]:
        return {ps.name: ps for ps in new_to_old(self.description.interdeps).paramspecs}


def run_to_xarray(info: RunInfo, data: ParameterData, path: str) -> xr.Dataset:
    """Return the run as the xarray dataset QCoDeS's ``to_xarray_dataset()`` gives.

    Args:
        info: The run's stored fields.
        data: Its data, from :meth:`QcodesReader.parameter_data`.
        path: The database file (for error messages).

    Raises:
        RunReadError: The description or parent links cannot be decoded, or the data
            cannot be laid out.
    """
    view = RunView(info, info.describer(path), path)
    try:
        dataset = load_to_xarray_dataset(cast("DataSetProtocol", view), data)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise RunReadError(path, info.run_id, "data layout", str(e)) from e
    return dataset
