"""Builders of real QCoDeS databases for the sync tests (written with QCoDeS itself)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from qcodes.dataset import Measurement, load_or_create_experiment
from qcodes.dataset.data_set import DataSet
from qcodes.dataset.experiment_container import Experiment
from qcodes.dataset.sqlite.connection import AtomicConnection
from qcodes.dataset.sqlite.database import connect
from qcodes.parameters import ManualParameter
from qcodes.validators import Arrays


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def create_db(path: Path, version: int = 9) -> tuple[AtomicConnection, Experiment]:
    """Create a database at schema ``version`` the way QCoDeS does.

    ``connect(path, version=v)`` initialises the schema and runs QCoDeS's upgrades up to
    ``v`` only, so a version-8 file is what QCoDeS at that schema version wrote.
    """
    conn = connect(path, version=version)
    experiment = load_or_create_experiment("exp", sample_name="sample-1", conn=conn)
    return conn, experiment


def _params() -> dict[str, ManualParameter]:
    return {
        "x": ManualParameter("x", label="Gate voltage", unit="V"),
        "y": ManualParameter("y", label="Bias", unit="mV"),
        "z": ManualParameter("z", label="Current", unit="A"),
        "w": ManualParameter("w", label="Phase", unit="rad"),
        "c": ManualParameter("c", label="S21", unit=""),
        "t": ManualParameter("t", label="Verdict", unit=""),
        "a": ManualParameter("a", label="Trace", unit="V", vals=Arrays(shape=(4,))),
    }


def run_1d(exp: Experiment, n: int = 50, name: str = "sweep") -> DataSet:
    p = _params()
    meas = Measurement(exp=exp, name=name)
    meas.register_parameter(p["x"])
    meas.register_parameter(p["z"], setpoints=(p["x"],))
    with meas.run() as saver:
        for i in range(n):
            saver.add_result((p["x"], i * 0.1), (p["z"], np.sin(i)))
    return saver.dataset


def run_2d(exp: Experiment, nx: int = 6, ny: int = 5, shaped: bool = False) -> DataSet:
    p = _params()
    meas = Measurement(exp=exp, name="grid")
    meas.register_parameter(p["x"])
    meas.register_parameter(p["y"])
    meas.register_parameter(p["z"], setpoints=(p["x"], p["y"]))
    if shaped:
        meas.set_shapes({"z": (nx, ny)})
    with meas.run() as saver:
        for i in range(nx):
            for j in range(ny):
                saver.add_result((p["x"], i), (p["y"], j * 0.5), (p["z"], i * j))
    return saver.dataset


def run_scattered(exp: Experiment) -> DataSet:
    p = _params()
    meas = Measurement(exp=exp, name="scattered")
    meas.register_parameter(p["x"])
    meas.register_parameter(p["y"])
    meas.register_parameter(p["z"], setpoints=(p["x"], p["y"]))
    rng = np.random.default_rng(1)
    with meas.run() as saver:
        for xv, yv in rng.random((20, 2)):
            saver.add_result((p["x"], xv), (p["y"], yv), (p["z"], xv * yv))
    return saver.dataset


def run_two_dependents(exp: Experiment) -> DataSet:
    p = _params()
    meas = Measurement(exp=exp, name="two dependents\nwith a second line")
    meas.register_parameter(p["x"])
    meas.register_parameter(p["y"])
    meas.register_parameter(p["z"], setpoints=(p["x"], p["y"]))
    meas.register_parameter(p["w"], setpoints=(p["x"],))
    with meas.run() as saver:
        for i in range(4):
            for j in range(3):
                saver.add_result((p["x"], i), (p["y"], j), (p["z"], i + j))
            saver.add_result((p["x"], i), (p["w"], -i))
    return saver.dataset


def run_array(exp: Experiment) -> DataSet:
    p = _params()
    meas = Measurement(exp=exp, name="arrays")
    meas.register_parameter(p["x"])
    meas.register_parameter(p["a"], setpoints=(p["x"],), paramtype="array")
    with meas.run() as saver:
        for i in range(5):
            saver.add_result((p["x"], i), (p["a"], np.arange(4.0) * i))
    return saver.dataset


def run_complex_text_nonfinite(exp: Experiment) -> DataSet:
    p = _params()
    meas = Measurement(exp=exp, name="mixed")
    meas.register_parameter(p["x"])
    meas.register_parameter(p["c"], setpoints=(p["x"],), paramtype="complex")
    meas.register_parameter(p["t"], setpoints=(p["x"],), paramtype="text")
    meas.register_parameter(p["z"], setpoints=(p["x"],))
    values = [1.0, np.nan, np.inf, -np.inf, 2.5]
    with meas.run() as saver:
        for i, v in enumerate(values):
            saver.add_result(
                (p["x"], i), (p["c"], complex(v, -i)), (p["t"], f"ok-{i}"), (p["z"], v)
            )
    return saver.dataset


def run_empty(exp: Experiment) -> DataSet:
    p = _params()
    meas = Measurement(exp=exp, name="nothing measured")
    meas.register_parameter(p["x"])
    meas.register_parameter(p["z"], setpoints=(p["x"],))
    with meas.run() as saver:
        pass
    return saver.dataset


RUN_KINDS: dict[str, Callable[[Experiment], DataSet]] = {
    "1d": run_1d,
    "2d-grid": run_2d,
    "2d-shaped": lambda exp: run_2d(exp, shaped=True),
    "scattered": run_scattered,
    "two-dependents": run_two_dependents,
    "array": run_array,
    "complex-text-nonfinite": run_complex_text_nonfinite,
}
