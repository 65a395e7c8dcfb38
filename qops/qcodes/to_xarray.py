"""Build the xarray dataset of a run from what :class:`~qops.qcodes.reader.QcodesReader` read.

The layout (coordinates, grids, multi-index for scattered setpoints, merging of several
dependents, attributes) is QCoDeS's own: its pure conversion function
``load_to_xarray_dataset`` is given a read-only view of the run built from the rows the
reader fetched, so the result equals ``DataSet.to_xarray_dataset()`` without opening the
database through QCoDeS (which would upgrade older schemas in place).

A dependent swept on a complete raster without declared shapes is laid out by
:func:`qops.qcodes.grid.raster_dataset` instead, which gives the dataset QCoDeS's pandas
path would, without building a pandas index; the other dependents still go through
QCoDeS, and the trees are merged and annotated by QCoDeS's own helpers.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from qcodes.dataset.descriptions.param_spec import ParamSpec
from qcodes.dataset.descriptions.rundescriber import RunDescriber
from qcodes.dataset.descriptions.versioning.converters import new_to_old
from qcodes.dataset.exporters.export_to_xarray import (
    _add_metadata_to_xarray,
    _add_param_spec_to_xarray_coords,
    _add_param_spec_to_xarray_data_vars,
    _load_to_xarray_dataset_dict_no_metadata,
    load_to_xarray_dataset,
)
from qcodes.dataset.linked_datasets.links import Link, str_to_links

from qops.qcodes.errors import RunReadError
from qops.qcodes.grid import raster_dataset
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
        grids = _raster_trees(view, data)
        if not grids:
            return load_to_xarray_dataset(cast("DataSetProtocol", view), data)
        return _merge_trees(view, data, grids)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise RunReadError(path, info.run_id, "data layout", str(e)) from e


def _raster_trees(view: RunView, data: ParameterData) -> dict[str, xr.Dataset]:
    """Lay out the dependents QCoDeS would grid through pandas and that are rasters."""
    interdeps = view.description.interdeps
    shapes = view.description.shapes
    grids = {}
    for name, tree in data.items():
        if shapes is not None and name in shapes and tree[name].shape == tuple(shapes[name]):
            continue  # QCoDeS lays it out directly from the shaped arrays
        _, deps, _ = interdeps.all_parameters_in_tree_by_group(interdeps.graph.nodes[name]["value"])
        grid = raster_dataset(name, [d.name for d in deps], tree)
        if grid is not None:
            grids[name] = grid
    return grids


def _merge_trees(view: RunView, data: ParameterData, grids: dict[str, xr.Dataset]) -> xr.Dataset:
    """Merge the trees as ``load_to_xarray_dataset`` does, the grids laid out already."""
    import xarray as xr

    protocol = cast("DataSetProtocol", view)
    rest = {name: tree for name, tree in data.items() if name not in grids}
    others = _load_to_xarray_dataset_dict_no_metadata(protocol, rest) if rest else {}
    trees = [grids[name] if name in grids else others[name] for name in data]
    # A parameter that is a coordinate of one tree and a data variable of another becomes
    # a coordinate of both, or the merge would refuse it (QCoDeS does the same).
    coordinates = {c for tree in trees for c in tree.coords}
    variables = {v for tree in trees for v in tree.data_vars}
    promote = coordinates & variables
    trees = [tree.set_coords([v for v in tree.data_vars if v in promote]) for tree in trees]
    dataset = xr.merge(trees, compat="equals", join="outer")
    _add_param_spec_to_xarray_coords(protocol, dataset)
    _add_param_spec_to_xarray_data_vars(protocol, dataset)
    _add_metadata_to_xarray(protocol, dataset)
    return dataset
