"""The quick-look plot of a dataset: its data reduced to what a plot on screen can show.

Pure functions from an ``xarray`` dataset (as the catalog opens a run's HDF5 file) to a
:class:`PlotData`: Plotly traces and layout, ready for ``Plotly.newPlot`` in the browser.

What is drawn:

- one value: a single marker; a 1-D variable: a line over its dimension;
- a 2-D variable: a heat map, the first dimension along x, the second along y;
- complex values: magnitude and phase, in two panels;
- more dimensions: the last two are drawn as a heat map, every leading dimension is held at
  one index (``slices``, the page's slice selector);
- scattered setpoints (a multi-index dimension): the points coloured by value;
- text values are not drawn (the payload says why).

Reduction, so a large run costs the browser no more than the plot's pixels:

- lines: **min-max per pixel column**. A run of ``n > 2 * width`` points is cut into
  ``width`` consecutive buckets and each bucket keeps its smallest and largest point, in
  their original order. The drawn line then covers exactly the pixels the full line would
  (a narrow resonance dip or a single spike survives), which striding would miss and a
  mean would flatten.
- heat maps: **block mean**. A map larger than the plot area is cut into blocks of
  ``ceil(nx / width) x ceil(ny / height)`` cells and each block is drawn as its mean (NaN
  ignored), what the eye averages over a screen pixel anyway; striding would alias noise
  and drop narrow features, and a min-max pair has no single colour. Complex maps are
  averaged as complex numbers before taking magnitude and phase, so the phase is the
  circular mean (averaging phases directly breaks at the +-pi wrap).
- heat map values travel as little-endian float32 in base64 (Plotly's typed-array form,
  ``{"dtype": "f4", "bdata": ..., "shape": "ny,nx"}``): a quarter of JSON text's size and
  parsed without a number-by-number decode.
"""

from __future__ import annotations

import base64
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr
from pydantic import BaseModel, JsonValue

from qops.errors import QopsError

FloatArray = npt.NDArray[np.float64]

MIN_PIXELS = 50
MAX_PIXELS = 4000
MAX_POINTS = 20_000
"""Most points of a scattered (multi-index) variable sent; more are strided."""


class PlotParameterError(QopsError):
    """A plot request's parameter names no variable, dimension or index of the dataset.

    Args:
        parameter: The query parameter (``var``, ``slice``).
        reason: What is wrong with its value.
    """

    def __init__(self, parameter: str, reason: str) -> None:
        self.parameter = parameter
        self.reason = reason
        super().__init__(f"invalid query parameter {parameter}: {reason}")


class SliceAxis(BaseModel):
    """A leading dimension held at one index (the slice selector's state).

    Attributes:
        dim: The dimension's name.
        size: Its length.
        index: The index shown.
        value: The coordinate at that index, as text (None: the dimension has no coordinate).
    """

    dim: str
    size: int
    index: int
    value: str | None


class PlotData(BaseModel):
    """What the browser needs to draw one variable.

    Attributes:
        variable: The variable drawn.
        variables: Every variable of the dataset that can be drawn (the variable picker).
        kind: ``line``, ``heatmap``, ``points``, ``value`` or ``none`` (nothing to draw).
        dims: The dimensions drawn (x first).
        shape: The variable's full shape.
        slices: The leading dimensions held at one index.
        reduction: How the data were reduced, for the reader (empty: sent as they are).
        message: Why nothing is drawn, when ``kind`` is ``none``.
        traces: Plotly traces.
        layout: Plotly layout.
    """

    variable: str
    variables: list[str]
    kind: Literal["line", "heatmap", "points", "value", "none"]
    dims: list[str]
    shape: list[int]
    slices: list[SliceAxis]
    reduction: str
    message: str | None = None
    traces: list[dict[str, JsonValue]]
    layout: dict[str, JsonValue]


def plottable_variables(data: xr.Dataset | xr.DataTree) -> dict[str, xr.DataArray]:
    """Return the data variables of ``data`` by name, in file order.

    A tree (one group per dependent) contributes each group's variables; a name that two
    groups share is qualified as ``group/name``.
    """
    if isinstance(data, xr.Dataset):
        return {str(name): data[name] for name in data.data_vars}
    found: list[tuple[str, str, xr.DataArray]] = []
    for node in data.subtree:
        group = node.path.strip("/")
        dataset = node.to_dataset()
        for name in node.data_vars:
            found.append((group, str(name), dataset[name]))
    counts: dict[str, int] = {}
    for _, name, _ in found:
        counts[name] = counts.get(name, 0) + 1
    return {
        (name if counts[name] == 1 else f"{group}/{name}"): array for group, name, array in found
    }


def parse_slices(values: Sequence[str]) -> dict[str, int]:
    """Parse ``slice`` query values ``dim=index`` (split at the last ``=``).

    Raises:
        PlotParameterError: A value has no ``=`` or its index is not an integer.
    """
    slices: dict[str, int] = {}
    for value in values:
        dim, sep, index = value.rpartition("=")
        if not sep or not dim:
            raise PlotParameterError("slice", f"{value!r} is not dim=index")
        try:
            slices[dim] = int(index)
        except ValueError as e:
            raise PlotParameterError(
                "slice", f"index {index!r} of {dim!r} is not an integer"
            ) from e
    return slices


def plot_data(
    data: xr.Dataset | xr.DataTree,
    *,
    variable: str | None = None,
    slices: Mapping[str, int] | None = None,
    width: int = 900,
    height: int = 500,
) -> PlotData:
    """Return the reduced plot of ``variable`` (default: the first) of ``data``.

    Args:
        data: The run's data.
        variable: A name from :func:`plottable_variables`.
        slices: Index of each leading dimension to hold (others: 0).
        width: The plot area's width in CSS pixels (the reduction's x budget).
        height: The plot area's height in CSS pixels (the heat map's y budget).

    Raises:
        PlotParameterError: Unknown variable, unknown or not-sliced dimension, or an index
            out of range.
    """
    width = min(max(width, MIN_PIXELS), MAX_PIXELS)
    height = min(max(height, MIN_PIXELS), MAX_PIXELS)
    arrays = plottable_variables(data)
    names = list(arrays)
    if not names:
        return _nothing("", names, [], "the dataset has no data variables")
    if variable is None:
        variable = names[0]
    if variable not in arrays:
        raise PlotParameterError("var", f"no variable {variable!r} (there are: {', '.join(names)})")
    array = arrays[variable]
    shape = [int(n) for n in array.shape]
    if array.dtype.kind not in "biufc":
        return _nothing(
            variable, names, shape, f"{variable} holds {array.dtype} values, not numbers"
        )
    if array.size == 0:
        return _nothing(variable, names, shape, f"{variable} has no values yet")
    array, held = _hold_leading(array, dict(slices or {}))
    plot = _draw(array, width, height)
    return PlotData(
        variable=variable,
        variables=names,
        kind=plot.kind,
        dims=[str(d) for d in array.dims],
        shape=shape,
        slices=held,
        reduction=plot.reduction,
        traces=plot.traces,
        layout=_layout(array, plot, variable, held),
    )


class _Drawn(BaseModel):
    kind: Literal["line", "heatmap", "points", "value"]
    traces: list[dict[str, JsonValue]]
    reduction: str
    panels: int


def _nothing(variable: str, names: list[str], shape: list[int], why: str) -> PlotData:
    return PlotData(
        variable=variable,
        variables=names,
        kind="none",
        dims=[],
        shape=shape,
        slices=[],
        reduction="",
        message=why,
        traces=[],
        layout={},
    )


def _hold_leading(
    array: xr.DataArray, slices: dict[str, int]
) -> tuple[xr.DataArray, list[SliceAxis]]:
    leading = [str(d) for d in array.dims[:-2]]
    for dim in slices:
        if dim not in leading:
            drawn = ", ".join(str(d) for d in array.dims[-2:])
            raise PlotParameterError(
                "slice",
                f"{dim!r} is not a dimension to slice "
                f"(drawn: {drawn}; sliced: {', '.join(leading) or 'none'})",
            )
    held: list[SliceAxis] = []
    for dim in leading:
        size = int(array.sizes[dim])
        index = slices.get(dim, 0)
        if not 0 <= index < size:
            raise PlotParameterError("slice", f"index {index} of {dim!r} is outside 0..{size - 1}")
        value = None
        if dim in array.coords:
            value = _text(array.coords[dim].values[index])
        held.append(SliceAxis(dim=dim, size=size, index=index, value=value))
        array = array.isel({dim: index})
    return array, held


def _text(value: object) -> str:
    if isinstance(value, np.datetime64):
        return str(pd.Timestamp(value).isoformat())
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _draw(array: xr.DataArray, width: int, height: int) -> _Drawn:
    complex_values = array.dtype.kind == "c"
    if array.ndim == 0:
        value = array.values.item()
        parts = _parts(np.asarray([value]), complex_values)
        traces = [
            {
                "type": "scatter",
                "mode": "markers",
                "x": [0],
                "y": _json_values(values),
                "name": label,
                **_axes(i),
            }
            for i, (label, values) in enumerate(parts)
        ]
        return _Drawn(kind="value", traces=traces, reduction="", panels=len(parts))
    if array.ndim == 1:
        dim = array.dims[0]
        index = array.indexes.get(dim)
        if isinstance(index, pd.MultiIndex) and index.nlevels >= 2:
            return _points(array, index)
        return _line(array, width, complex_values)
    return _heatmap(array, width, height, complex_values)


def _parts(values: npt.NDArray[np.generic], complex_values: bool) -> list[tuple[str, FloatArray]]:
    if complex_values:
        as_complex = np.asarray(values, dtype=np.complex128)
        return [
            ("magnitude", np.abs(as_complex).astype(np.float64)),
            ("phase (rad)", np.angle(as_complex).astype(np.float64)),
        ]
    return [("value", values.astype(np.float64))]


def _axes(panel: int) -> dict[str, JsonValue]:
    return {} if panel == 0 else {"xaxis": f"x{panel + 1}", "yaxis": f"y{panel + 1}"}


def _coordinate(array: xr.DataArray, dim: object) -> tuple[npt.NDArray[np.generic], bool]:
    """Return the values along ``dim`` and whether they are numbers (else positions)."""
    if dim in array.coords:
        values = np.asarray(array.coords[dim].values)
        if values.dtype.kind in "biuf":
            return values.astype(np.float64), True
        if values.dtype.kind == "M":
            return values, False
    return np.arange(array.sizes[str(dim)], dtype=np.float64), True


def _line(array: xr.DataArray, width: int, complex_values: bool) -> _Drawn:
    dim = array.dims[0]
    x, numeric = _coordinate(array, dim)
    n = x.shape[0]
    traces: list[dict[str, JsonValue]] = []
    kept = n
    for panel, (label, values) in enumerate(_parts(np.asarray(array.values), complex_values)):
        picked = min_max_indices(values, width) if n > 2 * width else np.arange(n)
        kept = len(picked)
        traces.append(
            {
                "type": "scatter",
                "mode": "lines" if n > 1 else "markers",
                "name": label,
                "x": _json_coords(x[picked], numeric),
                "y": _json_values(values[picked]),
                **_axes(panel),
            }
        )
    reduction = "" if kept == n else f"min-max per pixel column: {n} points drawn as {kept}"
    return _Drawn(kind="line", traces=traces, reduction=reduction, panels=len(traces))


def min_max_indices(values: FloatArray, buckets: int) -> npt.NDArray[np.intp]:
    """Return the indices of each bucket's smallest and largest value, in index order.

    ``values`` is cut into ``buckets`` consecutive runs of ``ceil(n / buckets)`` values; a
    run of NaN only keeps its first index (drawn as a gap). At most ``2 * buckets`` indices.
    """
    n = values.shape[0]
    size = math.ceil(n / buckets)
    count = math.ceil(n / size)
    padded = np.full(count * size, np.nan)
    padded[:n] = values
    blocks = padded.reshape(count, size)
    finite = np.isfinite(blocks)
    low = np.where(finite, blocks, np.inf).argmin(axis=1)
    high = np.where(finite, blocks, -np.inf).argmax(axis=1)
    starts = np.arange(count) * size
    empty = ~finite.any(axis=1)
    low[empty] = 0
    high[empty] = 0
    picked = np.sort(np.stack([starts + low, starts + high], axis=1), axis=1).ravel()
    picked = picked[picked < n]
    return np.unique(picked)


def block_mean(values: npt.NDArray[np.generic], fx: int, fy: int) -> npt.NDArray[np.generic]:
    """Return the mean of each ``fx x fy`` block of the 2-D ``values`` (NaN ignored).

    Edge blocks may be smaller; a block of NaN only is NaN. Complex values average as
    complex numbers.
    """
    nx, ny = values.shape
    bx, by = math.ceil(nx / fx), math.ceil(ny / fy)
    dtype = np.complex128 if values.dtype.kind == "c" else np.float64
    padded = np.full((bx * fx, by * fy), np.nan, dtype=dtype)
    padded[:nx, :ny] = values
    blocks = padded.reshape(bx, fx, by, fy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN block is NaN: intended
        if dtype == np.complex128:
            real = np.nanmean(blocks.real, axis=(1, 3))
            imag = np.nanmean(blocks.imag, axis=(1, 3))
            combined: npt.NDArray[np.generic] = real + 1j * imag
            return combined
        result: npt.NDArray[np.generic] = np.nanmean(blocks, axis=(1, 3))
        return result


def _coarse_coordinate(
    values: npt.NDArray[np.generic], factor: int, numeric: bool
) -> list[JsonValue]:
    if factor == 1:
        return _json_coords(values, numeric)
    if not numeric:
        return _json_coords(values[::factor], numeric)
    n = values.shape[0]
    count = math.ceil(n / factor)
    padded = np.full(count * factor, np.nan)
    padded[:n] = values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _json_coords(np.nanmean(padded.reshape(count, factor), axis=1), numeric)


def _heatmap(array: xr.DataArray, width: int, height: int, complex_values: bool) -> _Drawn:
    dim_x, dim_y = array.dims[-2], array.dims[-1]
    x, x_numeric = _coordinate(array, dim_x)
    y, y_numeric = _coordinate(array, dim_y)
    values = np.asarray(array.transpose(dim_x, dim_y).values)
    nx, ny = values.shape
    panels = 2 if complex_values else 1
    # Complex maps are drawn as two panels side by side: each gets half the width.
    fx = math.ceil(nx / max(width // panels, 1))
    fy = math.ceil(ny / height)
    reduced = block_mean(values, fx, fy) if fx > 1 or fy > 1 else values
    xs = _coarse_coordinate(x, fx, x_numeric)
    ys = _coarse_coordinate(y, fy, y_numeric)
    traces: list[dict[str, JsonValue]] = []
    for panel, (label, part) in enumerate(_parts(reduced, complex_values)):
        trace: dict[str, JsonValue] = {
            "type": "heatmap",
            "name": label,
            "x": xs,
            "y": ys,
            "z": typed_array(part.T),
            "colorscale": "Viridis",
            "colorbar": {
                "title": {"text": label},
                "len": 1.0,
                "x": 1.02 if panel == panels - 1 else 0.46,
            },
            **_axes(panel),
        }
        traces.append(trace)
    bx, by = reduced.shape
    reduction = ""
    if (bx, by) != (nx, ny):
        reduction = f"block mean of {fx}x{fy} cells: {nx}x{ny} drawn as {bx}x{by}"
    return _Drawn(kind="heatmap", traces=traces, reduction=reduction, panels=panels)


def _points(array: xr.DataArray, index: pd.MultiIndex) -> _Drawn:
    values = np.asarray(array.values)
    step = max(1, math.ceil(values.shape[0] / MAX_POINTS))
    first = np.asarray(index.get_level_values(0))[::step]
    second = np.asarray(index.get_level_values(1))[::step]
    traces: list[dict[str, JsonValue]] = []
    parts = _parts(values[::step], array.dtype.kind == "c")
    for panel, (label, part) in enumerate(parts):
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": label,
                "x": _json_coords(first, first.dtype.kind in "biuf"),
                "y": _json_coords(second, second.dtype.kind in "biuf"),
                "marker": {
                    "color": _json_values(part),
                    "colorscale": "Viridis",
                    "showscale": True,
                    "colorbar": {
                        "title": {"text": label},
                        "x": 1.02 if panel == len(parts) - 1 else 0.46,
                    },
                },
                **_axes(panel),
            }
        )
    reduction = "" if step == 1 else f"every {step}th of {values.shape[0]} points"
    return _Drawn(kind="points", traces=traces, reduction=reduction, panels=len(parts))


def typed_array(values: npt.NDArray[np.generic]) -> dict[str, JsonValue]:
    """Return Plotly's typed-array form of a 1-D or 2-D float array (float32, base64).

    Values outside float32's range would overflow, so such arrays go as float64.
    """
    as_float = np.asarray(values, dtype=np.float64)
    finite = as_float[np.isfinite(as_float)]
    wide = finite.size > 0 and float(np.abs(finite).max()) > float(np.finfo(np.float32).max)
    dtype, code = (np.dtype("<f8"), "f8") if wide else (np.dtype("<f4"), "f4")
    raw = np.ascontiguousarray(as_float, dtype=dtype).tobytes()
    return {
        "dtype": code,
        "bdata": base64.b64encode(raw).decode("ascii"),
        "shape": ",".join(str(n) for n in as_float.shape),
    }


def _json_values(values: npt.NDArray[np.generic]) -> list[JsonValue]:
    """Floats for JSON: NaN and infinities become null (a gap in the plot)."""
    as_float = np.asarray(values, dtype=np.float64)
    return [float(v) if math.isfinite(v) else None for v in as_float.tolist()]


def _json_coords(values: npt.NDArray[np.generic], numeric: bool) -> list[JsonValue]:
    if numeric:
        return _json_values(values)
    return [_text(v) for v in values]


def _layout(
    array: xr.DataArray, plot: _Drawn, variable: str, held: list[SliceAxis]
) -> dict[str, JsonValue]:
    unit = str(array.attrs.get("units", "") or "")
    label = str(array.attrs.get("long_name", "") or "")
    title = f"{label} ({variable})" if label and label != variable else variable
    title += f" [{unit}]" if unit else ""
    if held:
        title += " at " + ", ".join(
            f"{s.dim}={s.value if s.value is not None else s.index}" for s in held
        )
    layout: dict[str, JsonValue] = {
        "title": {"text": title},
        "margin": {"l": 70, "r": 30, "t": 50, "b": 60},
        "showlegend": False,
    }
    labels = [_axis_label(array, d) for d in array.dims] or ["index"]
    if plot.kind == "points":
        index = array.indexes[array.dims[0]]
        assert isinstance(index, pd.MultiIndex)
        labels = [str(index.names[0]), str(index.names[1])]
    x_label = labels[0]
    y_label = labels[1] if plot.kind in {"heatmap", "points"} else title
    if plot.panels == 1:
        layout["xaxis"] = {"title": {"text": x_label}}
        layout["yaxis"] = {"title": {"text": y_label}}
        return layout
    if plot.kind == "line" or plot.kind == "value":
        # Magnitude above phase, sharing x.
        layout["xaxis"] = {"anchor": "y", "title": {"text": ""}, "matches": "x2"}
        layout["yaxis"] = {"domain": [0.55, 1.0], "title": {"text": "magnitude"}}
        layout["xaxis2"] = {"anchor": "y2", "title": {"text": x_label}}
        layout["yaxis2"] = {"domain": [0.0, 0.45], "title": {"text": "phase (rad)"}}
        return layout
    # Heat maps and points: magnitude left, phase right.
    layout["xaxis"] = {"domain": [0.0, 0.4], "anchor": "y", "title": {"text": x_label}}
    layout["yaxis"] = {"anchor": "x", "title": {"text": y_label}}
    layout["xaxis2"] = {"domain": [0.56, 0.96], "anchor": "y2", "title": {"text": x_label}}
    layout["yaxis2"] = {"anchor": "x2", "title": {"text": y_label}}
    layout["annotations"] = [
        {
            "text": "magnitude",
            "xref": "paper",
            "yref": "paper",
            "x": 0.2,
            "y": 1.0,
            "showarrow": False,
            "yanchor": "bottom",
        },
        {
            "text": "phase (rad)",
            "xref": "paper",
            "yref": "paper",
            "x": 0.76,
            "y": 1.0,
            "showarrow": False,
            "yanchor": "bottom",
        },
    ]
    return layout


def _axis_label(array: xr.DataArray, dim: object) -> str:
    if dim in array.coords:
        coordinate = array.coords[dim]
        name = str(coordinate.attrs.get("long_name") or dim)
        unit = str(coordinate.attrs.get("units", "") or "")
        return name + (f" [{unit}]" if unit else "")
    return str(dim)
