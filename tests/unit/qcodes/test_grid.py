"""Complete rasters gridded from numpy: the same dataset as QCoDeS's pandas path, or none."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from qcodes.dataset import Measurement, load_by_id
from qcodes.dataset.experiment_container import Experiment
from qcodes.dataset.exporters.export_to_xarray import load_to_xarray_dataset
from qcodes.parameters import ManualParameter

from qops.export.hdf5 import read_hdf5, write_hdf5
from qops.qcodes.grid import raster_axes, raster_dataset
from qops.qcodes.reader import QcodesReader
from qops.qcodes.to_xarray import RunView, run_to_xarray
from tests.unit.qcodes.qcodes_dbs import create_db
from tests.unit.qcodes.test_reader import assert_equals_qcodes

Points = list[tuple[float, ...]]


def _measure(
    exp: Experiment, points: Points, dims: int = 2, complex_values: bool = False, two: bool = False
) -> int:
    """A run of one dependent (``two``: two) over ``dims`` setpoints at ``points``, in order."""
    setpoints = [ManualParameter(n, unit="V") for n in ("x", "y", "u")[:dims]]
    z = ManualParameter("z", unit="A")
    w = ManualParameter("w", unit="A")
    meas = Measurement(exp=exp, name="raster")
    for p in setpoints:
        meas.register_parameter(p)
    meas.register_parameter(z, setpoints=setpoints, paramtype="complex" if complex_values else None)
    if two:
        meas.register_parameter(w, setpoints=setpoints)
    with meas.run() as saver:
        for point in points:
            value = sum((i + 1) * v for i, v in enumerate(point))
            result = [
                *zip(setpoints, point, strict=True),
                (z, complex(value, -value) if complex_values else value),
            ]
            if two:
                result.append((w, value * 2))
            saver.add_result(*result)
    return saver.run_id


def _grid(xs: list[float], ys: list[float]) -> Points:
    return [(x, y) for x in xs for y in ys]


RASTERS: dict[str, Callable[[Experiment], int]] = {
    "x-outer": lambda e: _measure(e, _grid([0.0, 0.5, 1.0], [-1.0, 0.25, 2.0, 3.0])),
    "y-outer": lambda e: _measure(e, [(x, y) for y in (1.0, 2.0) for x in (0.1, 0.2, 0.3)]),
    "descending": lambda e: _measure(e, _grid([1.0, 0.5, 0.0], [3.0, 2.0, -1.0, -7.5])),
    "unordered-axes": lambda e: _measure(e, _grid([0.3, -2.0, 1.1], [5.0, 4.0, 6.0])),
    "three-d": lambda e: _measure(
        e, [(x, y, u) for x in (0.0, 1.0) for u in (7.0, 8.0, 9.0) for y in (-1.0, 1.0)], dims=3
    ),
    "complex": lambda e: _measure(e, _grid([0.0, 1.0], [0.0, 1.0, 2.0]), complex_values=True),
    "two-dependents": lambda e: _measure(e, _grid([0.0, 1.0, 2.0], [0.5, 1.5]), two=True),
}
NOT_RASTERS: dict[str, Callable[[Experiment], int]] = {
    "snake": lambda e: _measure(
        e,
        [
            (x, y)
            for i, x in enumerate((0.0, 1.0, 2.0))
            for y in ((0.0, 1.0) if i % 2 == 0 else (1.0, 0.0))
        ],
    ),
    "incomplete": lambda e: _measure(e, _grid([0.0, 1.0, 2.0], [0.0, 1.0])[:-1]),
    "repeated-point": lambda e: _measure(e, [(0.0, 0.0), (0.0, 1.0), (0.0, 1.0), (1.0, 0.0)]),
    "repeated-axis-value": lambda e: _measure(e, _grid([0.0, 1.0, 0.0], [0.0, 1.0])),
    "one-point": lambda e: _measure(e, [(0.0, 0.0)]),
}


def _read(tmp_path: Path, build: Callable[[Experiment], int]) -> tuple[Path, int]:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    run_id = build(exp)
    conn.close()
    return db, run_id


@pytest.mark.parametrize(
    ("kind", "is_raster"), [(k, True) for k in RASTERS] + [(k, False) for k in NOT_RASTERS]
)
def test_run_to_xarray_raster_or_not_identical_to_qcodes_layout(
    tmp_path: Path, kind: str, is_raster: bool
) -> None:
    db, run_id = _read(tmp_path, {**RASTERS, **NOT_RASTERS}[kind])
    with QcodesReader(db) as reader:
        info = reader.run_info(run_id)
        data = reader.parameter_data(info)
    view = RunView(info, info.describer(str(db)), str(db))
    setpoints = [n for n in ("x", "y", "u") if n in data["z"]]

    mine = run_to_xarray(info, data, str(db))
    # QCoDeS's own layout of the very same arrays (its pandas path for unshaped runs).
    expected = load_to_xarray_dataset(view, data)  # type: ignore[arg-type]

    assert (raster_dataset("z", setpoints, data["z"]) is not None) is is_raster
    xr.testing.assert_identical(mine, expected)
    assert list(mine.variables) == list(expected.variables)
    for name, variable in expected.variables.items():
        assert mine[name].dtype == variable.dtype, name
        assert mine[name].attrs == variable.attrs, name


@pytest.mark.parametrize("kind", sorted(RASTERS))
def test_run_to_xarray_raster_hdf5_equals_qcodes_to_xarray_dataset(
    tmp_path: Path, kind: str
) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    run_id = RASTERS[kind](exp)
    expected = load_by_id(run_id, conn=conn).to_xarray_dataset()
    conn.close()
    with QcodesReader(db) as reader:
        info = reader.run_info(run_id)
        write_hdf5(run_to_xarray(info, reader.parameter_data(info), str(db)), tmp_path / "run.h5")
    write_hdf5(expected, tmp_path / "reference.h5")
    assert_equals_qcodes(read_hdf5(tmp_path / "run.h5"), read_hdf5(tmp_path / "reference.h5"))


def test_raster_axes_large_sweep_finds_shape_and_nesting() -> None:
    x = np.repeat(np.linspace(1, 0, 1000), 300)  # outer loop, descending
    y = np.tile(np.linspace(-1, 1, 300), 1000)
    found = raster_axes([y, x])
    assert found is not None
    shape, nesting, axes = found
    assert shape == (1000, 300)
    assert nesting == [1, 0]
    np.testing.assert_array_equal(axes[0], np.linspace(-1, 1, 300))
    np.testing.assert_array_equal(axes[1], np.linspace(1, 0, 1000))


def test_raster_axes_one_value_changed_is_not_a_raster() -> None:
    x = np.repeat(np.arange(50.0), 40)
    y = np.tile(np.arange(40.0), 50)
    y[1234] = 0.5
    assert raster_axes([x, y]) is None


@pytest.mark.parametrize("odd", [-0.0, np.nan], ids=["negative-zero", "nan"])
def test_raster_dataset_negative_zero_or_nan_setpoint_leaves_it_to_qcodes(odd: float) -> None:
    """pandas groups NaN and -0.0 its own way; QCoDeS stores -0.0 as 0, but a caller may not."""
    tree = {
        "z": np.arange(4.0),
        "x": np.array([odd, odd, 1.0, 1.0]),
        "y": np.array([0.0, 1.0, 0.0, 1.0]),
    }
    assert raster_dataset("z", ["x", "y"], tree) is None
    tree["x"] = np.array([0.0, 0.0, 1.0, 1.0])
    assert raster_dataset("z", ["x", "y"], tree) is not None
