"""A run's data as one xarray dataset or, when QCoDeS cannot merge it, one per dependent.

QCoDeS lays each dependent parameter out with its own setpoints and merges the results into
one dataset (``to_xarray_dataset``). The merge fails when two dependents share a parameter
with different values, as in some runs of QCoDeS's own schema-version-2 and -3 fixtures
(``p0`` is the basis of inferred parameters in ``p4``'s tree and in the standalone
``p5``'s). QCoDeS still reads such a run, one dataset per dependent, with
``to_xarray_dataset_dict``; :func:`run_dataset` then gives that reading as an
``xarray.DataTree``: the run's attributes on the root and one group per dependent, named
after it, each equal to the dataset QCoDeS's dict holds for it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

from qops.qcodes.errors import RunReadError
from qops.qcodes.reader import ParameterData, RunInfo
from qops.qcodes.to_xarray import RunView, run_to_xarray

if TYPE_CHECKING:
    import xarray as xr
    from qcodes.dataset.data_set_protocol import DataSetProtocol

logger = logging.getLogger(__name__)

GROUPS_LAYOUT = "one group per dependent parameter (QCoDeS to_xarray_dataset_dict)"
"""The root attribute ``qops_layout`` of a run written as groups."""


def run_dataset(info: RunInfo, data: ParameterData, path: str) -> xr.Dataset | xr.DataTree:
    """Return the run as QCoDeS reads it: one dataset, else one group per dependent.

    The dataset equals QCoDeS's ``to_xarray_dataset()``; when that cannot merge the
    dependents (an ``xarray`` merge conflict), the tree's groups equal
    ``to_xarray_dataset_dict()``.

    Raises:
        RunReadError: Neither layout can be built (naming run, file and both reasons), or
            the description or parent links cannot be decoded.
    """
    import xarray as xr

    try:
        return run_to_xarray(info, data, path)
    except RunReadError as e:
        if not isinstance(e.__cause__, xr.MergeError):
            raise
        merge_error = e.__cause__
    logger.info(
        "run %d of %s: dependents cannot be merged into one dataset (%s); one group each",
        info.run_id,
        path,
        str(merge_error).splitlines()[0],
    )
    return run_to_groups(info, data, path, merge_error)


def run_to_groups(
    info: RunInfo, data: ParameterData, path: str, why: Exception | None = None
) -> xr.DataTree:
    """Return the run as a tree: its attributes on the root, one group per dependent.

    Args:
        info: The run's stored fields.
        data: Its data, from :meth:`QcodesReader.parameter_data`.
        path: The database file (for error messages).
        why: Why the run is not one dataset (named in the error if this fails too).

    Raises:
        RunReadError: The groups cannot be built either.
    """
    import xarray as xr
    from qcodes.dataset.exporters.export_to_xarray import load_to_xarray_dataset_dict

    view = RunView(info, info.describer(path), path)
    try:
        groups = load_to_xarray_dataset_dict(cast("DataSetProtocol", view), data)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        merged = f"not one dataset ({why}) and " if why is not None else ""
        raise RunReadError(
            path, info.run_id, "data layout", f"{merged}not one dataset per dependent ({e})"
        ) from e
    if not groups:
        raise RunReadError(path, info.run_id, "data layout", f"no dependent parameters ({why})")
    attrs = dict(next(iter(groups.values())).attrs)
    attrs["qops_layout"] = GROUPS_LAYOUT
    root = xr.Dataset(attrs=attrs)
    return xr.DataTree.from_dict({"/": root, **{f"/{name}": ds for name, ds in groups.items()}})
