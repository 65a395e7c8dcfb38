"""The quick-look plot's reduction and drawing choices (pure functions, no server)."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from qops.console.plotting import (
    PlotParameterError,
    block_mean,
    min_max_indices,
    parse_slices,
    plot_data,
    plottable_variables,
    typed_array,
)


def _decode(spec: object) -> np.ndarray:
    assert isinstance(spec, dict)
    dtype = {"f4": "<f4", "f8": "<f8"}[spec["dtype"]]
    shape = tuple(int(n) for n in spec["shape"].split(","))
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=dtype).reshape(shape)


def test_min_max_indices_keeps_each_buckets_extremes_in_order() -> None:
    values = np.zeros(1000)
    values[123] = 5.0  # a one-point spike
    values[777] = -3.0  # a one-point dip

    picked = min_max_indices(values, 10)

    assert len(picked) <= 20
    assert 123 in picked
    assert 777 in picked
    assert list(picked) == sorted(picked)


def test_min_max_indices_skips_nan_and_keeps_all_nan_buckets_as_one_point() -> None:
    values = np.array([np.nan, 1.0, 2.0, np.nan, np.nan, np.nan, 3.0, -1.0])

    picked = min_max_indices(values, 4)

    assert list(picked) == [1, 2, 4, 6, 7]  # [4] is the all-NaN bucket's first index


def test_block_mean_averages_blocks_ignoring_nan_with_smaller_edge_blocks() -> None:
    values = np.arange(20, dtype=float).reshape(4, 5)
    values[0, 0] = np.nan

    reduced = block_mean(values, 2, 2)

    assert reduced.shape == (2, 3)
    assert reduced[0, 0] == pytest.approx((1 + 5 + 6) / 3)
    assert reduced[0, 2] == pytest.approx((4 + 9) / 2)  # the edge block is one column wide


def test_block_mean_of_complex_values_averages_the_complex_numbers() -> None:
    # Phases +pi-0.1 and -pi+0.1 average to ~pi as complex numbers, to 0 as phases.
    values = np.exp(1j * np.array([[np.pi - 0.1, -np.pi + 0.1]]))

    (mean,) = block_mean(values, 1, 2)[0]

    assert abs(np.angle(mean)) == pytest.approx(np.pi)


def test_a_thousand_by_thousand_map_is_reduced_to_the_plot_size() -> None:
    z = np.random.default_rng(0).random((1000, 1000))
    data = xr.Dataset(
        {"z": (("x", "y"), z)}, coords={"x": np.arange(1000.0), "y": np.arange(1000.0) / 2}
    )

    plot = plot_data(data, width=800, height=450)

    assert plot.kind == "heatmap"
    (trace,) = plot.traces
    drawn = _decode(trace["z"])
    assert drawn.shape == (334, 500)  # (y, x): blocks of 2 x-cells by 3 y-cells
    assert drawn.shape[1] <= 800
    assert drawn.shape[0] <= 450
    assert drawn[0, 0] == pytest.approx(z[:2, :3].mean(), rel=1e-6)
    assert trace["x"][0] == pytest.approx(0.5)  # the block's mean coordinate
    assert len(trace["x"]) == 500
    assert len(trace["y"]) == 334
    assert "1000x1000 drawn as 500x334" in plot.reduction


def test_a_small_map_is_sent_as_it_is_with_x_along_the_first_dimension() -> None:
    z = np.arange(6.0).reshape(3, 2)
    data = xr.Dataset({"z": (("gate", "bias"), z)}, coords={"gate": [0, 1, 2], "bias": [5, 6]})

    plot = plot_data(data)

    (trace,) = plot.traces
    assert trace["x"] == [0, 1, 2]
    assert trace["y"] == [5, 6]
    np.testing.assert_array_equal(_decode(trace["z"]), z.T)
    assert plot.reduction == ""
    assert plot.dims == ["gate", "bias"]


def test_a_long_line_is_reduced_by_min_max_and_a_short_one_is_not() -> None:
    n = 100_000
    data = xr.Dataset({"v": (("t",), np.sin(np.arange(n) / 100))}, coords={"t": np.arange(n)})

    long_plot = plot_data(data, width=500)
    short_plot = plot_data(data.isel(t=slice(0, 900)), width=500)

    assert len(long_plot.traces[0]["x"]) <= 1000
    assert "min-max" in long_plot.reduction
    assert len(short_plot.traces[0]["x"]) == 900
    assert short_plot.reduction == ""


def test_complex_values_are_drawn_as_magnitude_and_phase_panels() -> None:
    s = np.array([1 + 1j, -2, 3j])
    data = xr.Dataset({"s21": (("f",), s)}, coords={"f": [1.0, 2.0, 3.0]})

    plot = plot_data(data)

    magnitude, phase = plot.traces
    assert magnitude["name"] == "magnitude"
    assert phase["name"] == "phase (rad)"
    assert magnitude["y"] == pytest.approx(list(np.abs(s)))
    assert phase["y"] == pytest.approx(list(np.angle(s)))
    assert phase["xaxis"] == "x2"
    assert "yaxis2" in plot.layout


def test_more_dimensions_hold_the_leading_ones_at_the_given_index() -> None:
    v = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    data = xr.Dataset({"v": (("field", "x", "y"), v)}, coords={"field": [0.5, 1.5]})

    plot = plot_data(data, slices={"field": 1})

    assert plot.kind == "heatmap"
    assert plot.dims == ["x", "y"]
    (held,) = plot.slices
    assert (held.dim, held.size, held.index, held.value) == ("field", 2, 1, "1.5")
    np.testing.assert_array_equal(_decode(plot.traces[0]["z"]), v[1].T)
    assert "field=1.5" in str(plot.layout["title"])


@pytest.mark.parametrize(
    ("slices", "fragment"),
    [
        ({"x": 0}, "'x' is not a dimension to slice"),
        ({"nope": 0}, "'nope' is not a dimension to slice"),
        ({"field": 2}, "outside 0..1"),
        ({"field": -1}, "outside 0..1"),
    ],
)
def test_bad_slices_name_the_slice_parameter(slices: dict[str, int], fragment: str) -> None:
    data = xr.Dataset({"v": (("field", "x", "y"), np.zeros((2, 3, 4)))})

    with pytest.raises(PlotParameterError) as raised:
        plot_data(data, slices=slices)

    assert raised.value.parameter == "slice"
    assert fragment in str(raised.value)


def test_unknown_variable_names_the_var_parameter_and_the_choices() -> None:
    data = xr.Dataset({"a": (("x",), [1.0]), "b": (("x",), [2.0])})

    with pytest.raises(PlotParameterError, match=r"invalid query parameter var: .*a, b"):
        plot_data(data, variable="c")


def test_parse_slices_splits_at_the_last_equals_sign() -> None:
    assert parse_slices(["a=b=2", "t=0"]) == {"a=b": 2, "t": 0}
    with pytest.raises(PlotParameterError, match="slice"):
        parse_slices(["t"])
    with pytest.raises(PlotParameterError, match="not an integer"):
        parse_slices(["t=one"])


def test_text_and_empty_variables_are_not_drawn_and_say_why() -> None:
    data = xr.Dataset({"verdict": (("x",), np.array(["ok", "bad"])), "e": (("x0",), [])})

    text = plot_data(data, variable="verdict")
    empty = plot_data(data, variable="e")

    assert text.kind == "none"
    assert "not numbers" in (text.message or "")
    assert empty.kind == "none"
    assert "no values" in (empty.message or "")


def test_non_finite_values_become_gaps() -> None:
    data = xr.Dataset({"v": (("x",), [1.0, np.nan, np.inf, 2.0])})

    (trace,) = plot_data(data).traces

    assert trace["y"] == [1.0, None, None, 2.0]


def test_scattered_setpoints_are_drawn_as_coloured_points() -> None:
    index = pd.MultiIndex.from_arrays([[0.1, 0.5, 0.9], [1.0, 2.0, 0.5]], names=["x", "y"])
    coords = xr.Coordinates.from_pandas_multiindex(index, "multi_index")
    data = xr.Dataset({"z": (("multi_index",), [1.0, 2.0, 3.0])}, coords=coords)

    plot = plot_data(data)

    assert plot.kind == "points"
    (trace,) = plot.traces
    assert trace["x"] == [0.1, 0.5, 0.9]
    assert trace["y"] == [1.0, 2.0, 0.5]
    assert trace["marker"]["color"] == [1.0, 2.0, 3.0]


def test_a_tree_of_groups_offers_every_groups_variables() -> None:
    tree = xr.DataTree.from_dict(
        {
            "/": xr.Dataset(),
            "/z": xr.Dataset({"z": (("x",), [1.0, 2.0])}),
            "/w": xr.Dataset({"w": (("y",), [3.0])}),
        }
    )

    assert list(plottable_variables(tree)) == ["z", "w"]
    assert plot_data(tree, variable="w").traces[0]["y"] == [3.0]


def test_typed_array_uses_float64_only_beyond_float32_range() -> None:
    assert typed_array(np.array([1.0, np.nan]))["dtype"] == "f4"
    wide = typed_array(np.array([1e300]))
    assert wide["dtype"] == "f8"
    assert _decode(wide)[0] == 1e300
