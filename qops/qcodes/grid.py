"""Complete rectangular sweeps laid out as xarray grids straight from numpy.

A run without declared shapes reaches QCoDeS's exporter as flat columns; QCoDeS then
builds a pandas multi-index of the setpoints, checks that it is unique and fills a grid
from it (``DataFrame.to_xarray``). For a 1000 x 1000 sweep that is about 0.1-0.2 s per
dependent, mostly hashing a million setpoint pairs. Most sweeps are rasters: nested loops,
each setpoint repeating in runs of a fixed length. :func:`raster_dataset` recognises one
in a few linear passes and builds the same dataset QCoDeS's pandas path gives (axes sorted
ascending, dimension order the setpoints' order, values unchanged); anything else (a
snake scan, missing or repeated points, NaN or a negative zero among the setpoints,
inferred parameters, arrays) returns None and goes the QCoDeS way.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import xarray as xr


def _run_length(values: npt.NDArray[Any]) -> int:
    """Return how many values at the start equal the first one."""
    differs = values != values[0]
    first = int(np.argmax(differs))
    return first if differs[first] else len(values)


def raster_axes(
    setpoints: Sequence[npt.NDArray[np.float64]],
) -> tuple[tuple[int, ...], list[int], list[npt.NDArray[np.float64]]] | None:
    """Find the nested-loop raster the flat ``setpoints`` were swept on.

    Returns:
        ``(shape, nesting, axes)``: the raster's shape, outermost loop first; for each
        loop the index of its setpoint; and each setpoint's values along its loop (in the
        order swept). None unless every combination of the loops' distinct values occurs
        exactly once, in nested-loop order.
    """
    total = len(setpoints[0])
    if total == 0 or any(len(s) != total for s in setpoints):
        return None
    runs = [_run_length(s) for s in setpoints]
    nesting = sorted(range(len(setpoints)), key=lambda i: -runs[i])
    ordered = [runs[i] for i in nesting]
    if len(set(ordered)) != len(ordered) or ordered[-1] != 1 or total % ordered[0]:
        return None
    shape = [total // ordered[0]]
    for outer, inner in itertools.pairwise(ordered):
        if outer % inner:
            return None
        shape.append(outer // inner)
    axes: list[npt.NDArray[np.float64]] = [np.empty(0)] * len(setpoints)
    for axis, index in enumerate(nesting):
        grid = setpoints[index].reshape(shape)
        line = grid[tuple(slice(None) if a == axis else 0 for a in range(len(shape)))]
        along = tuple(slice(None) if a == axis else np.newaxis for a in range(len(shape)))
        if not np.array_equal(grid, np.broadcast_to(line[along], grid.shape)):
            return None
        if np.unique(line).size != line.size:
            return None
        axes[index] = line
    return tuple(shape), nesting, axes


def _plain_setpoint(values: npt.NDArray[Any]) -> bool:
    """A flat float column without NaN or negative zero (which pandas groups its own way)."""
    if values.ndim != 1 or values.dtype != np.float64:
        return False
    if np.isnan(values).any():
        return False
    return not np.signbit(values[values == 0]).any()


def raster_dataset(
    name: str, setpoint_names: Sequence[str], tree: Mapping[str, npt.NDArray[Any]]
) -> xr.Dataset | None:
    """Return the tree of dependent ``name`` as a grid, as QCoDeS's pandas path lays it out.

    Args:
        name: The dependent parameter.
        setpoint_names: Its setpoints in their declared order (the grid's dimensions).
        tree: The tree's flat arrays (``name`` and exactly ``setpoint_names``).

    Returns:
        The dataset (no attributes yet), or None when the tree is not a complete raster
        of at least two setpoints with plain float values.
    """
    import xarray as xr

    if len(setpoint_names) < 2 or set(tree) != {name, *setpoint_names}:
        return None
    values = tree[name]
    if values.ndim != 1 or values.dtype.kind not in "fc":
        return None
    setpoints = [tree[s] for s in setpoint_names]
    if not all(_plain_setpoint(s) for s in setpoints):
        return None
    found = raster_axes(setpoints)
    if found is None:
        return None
    shape, nesting, axes = found
    # Axes in the declared order, each sorted ascending like a pandas index level.
    order = [np.argsort(axis, kind="stable") for axis in axes]
    position = {index: axis for axis, index in enumerate(nesting)}
    grid = values.reshape(shape).transpose([position[i] for i in range(len(axes))])
    grid = np.ascontiguousarray(grid[np.ix_(*order)])
    dataset = xr.Dataset(
        coords={s: axis[o] for s, axis, o in zip(setpoint_names, axes, order, strict=True)}
    )
    dataset[name] = (tuple(setpoint_names), grid)
    # Selecting the variable puts it before its coordinates, as DataFrame.to_xarray does.
    return dataset[[name]]
