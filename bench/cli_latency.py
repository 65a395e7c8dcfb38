"""Latency of the sync CLI as a user sees it: each command a fresh ``qops`` process.

Usage: .venv/bin/python bench/cli_latency.py [--repeats 5]

A small QCoDeS database (four 1-D runs of 100 points, written with QCoDeS) and a temporary
embedded MongoDB. Each repetition uses a MongoDB database of its own, so every
``sources add`` registers a new source and every first ``sync NAME`` syncs four new runs;
the second ``sync NAME`` finds nothing new. Measured twice: without any Prefect API
(``PREFECT_API_URL`` unset, no local server), and with the local qops Prefect server
running (``qops prefect start``), where ``sources add`` saves a block and ``sync NAME`` is a
flow run. The figure is the median wall time of the ``qops`` process; each command's output
is checked for what it should say and for any mention of telemetry. The CPU time of the
``qops`` process (user + system) is shown too: on a shared machine it tells the command's own
work from waiting for the cores (it leaves out the servers' work and any waiting on them).

Goals (issue 11): ``sources add`` <= 2 s, ``sync status`` <= 1 s, ``sync NAME`` <= 5 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from qcodes.dataset import Measurement, load_or_create_experiment
from qcodes.dataset.sqlite.database import connect as qcodes_connect
from qcodes.parameters import ManualParameter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qops.cli.prefect_server import LocalPrefectServer
from qops.mongo import EmbeddedMongo

QOPS = str(Path(sys.executable).with_name("qops"))
COMMANDS = ("sources add", "sync NAME (4 new runs)", "sync NAME (nothing new)", "sync status")


def _build_db(path: Path, runs: int = 4) -> None:
    conn = qcodes_connect(path)
    exp = load_or_create_experiment("bench", sample_name="sample", conn=conn)
    x = ManualParameter("x", unit="V")
    y = ManualParameter("y", unit="A")
    for i in range(runs):
        meas = Measurement(exp=exp, name=f"sweep {i}")
        meas.register_parameter(x)
        meas.register_parameter(y, setpoints=(x,))
        with meas.run() as saver:
            xs = np.linspace(0, 1, 100)
            saver.add_result((x, xs), (y, np.sin(xs + i)))
    conn.close()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(args: list[str], env: dict[str, str], expect: str) -> tuple[float, float]:
    """Run ``qops ARGS``; return its wall time and CPU time (user + system), in seconds."""
    cpu = _cpu_s()
    start = time.perf_counter()
    result = subprocess.run(
        [QOPS, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    elapsed = time.perf_counter() - start, _cpu_s() - cpu
    output = result.stdout + result.stderr
    if result.returncode != 0 or expect not in output:
        raise SystemExit(f"qops {' '.join(args)} failed ({result.returncode}):\n{output}")
    if "telemetry" in output.lower():
        raise SystemExit(f"qops {' '.join(args)} mentioned telemetry:\n{output}")
    return elapsed


def _measure(
    env: dict[str, str], db: Path, repeats: int, mode: str
) -> dict[str, tuple[float, float]]:
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
    block = "block  QCoDeSSyncSource saved" if mode == "local" else "block was not saved"
    flow = "flow run" if mode == "local" else "no flow run"
    for i in range(repeats):
        run_env = {**env, "QOPS_MONGODB_DB": f"bench_{mode}_{i}"}
        add = ["sources", "add", "lab", "--database", str(db), "--set-up", "rig"]
        times["sources add"].append(_run(add, run_env, block))
        times["sync NAME (4 new runs)"].append(_run(["sync", "lab"], run_env, "lab: 4 new"))
        times["sync NAME (nothing new)"].append(_run(["sync", "lab"], run_env, flow))
        times["sync status"].append(_run(["sync", "status"], run_env, "\tsynced\t"))
    return {
        name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
        for name, values in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qops-bench-cli-"))
    data_dir = work / "data"
    embedded = EmbeddedMongo(data_dir)
    prefect = LocalPrefectServer(data_dir)
    try:
        server = embedded.ensure_running()
        db = work / "lab.db"
        _build_db(db)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PREFECT_", "QOPS_"))
        }
        env.update(
            QOPS_DATA_DIR=str(data_dir),
            QOPS_MONGODB_URL=server.url,
            # A Prefect home of its own: no profile of the user's points anywhere.
            PREFECT_HOME=str(work / "prefect-home"),
        )
        without = _measure(env, db, args.repeats, "none")
        prefect.ensure_running()
        with_local = _measure(env, db, args.repeats, "local")
    finally:
        prefect.stop()
        embedded.stop()
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"median of {args.repeats} fresh processes; load average {load[0]:.1f} {load[1]:.1f}")
    print("wall time (CPU time of the qops process, user + system)")
    print(f"{'command':<26}{'no Prefect API':>20}{'local server':>20}")
    for name in COMMANDS:
        cells = [f"{w:.2f} s ({c:.2f} s)" for w, c in (without[name], with_local[name])]
        print(f"{name:<26}{cells[0]:>20}{cells[1]:>20}")


if __name__ == "__main__":
    main()
