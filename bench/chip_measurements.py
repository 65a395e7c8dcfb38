"""Time the calibration measurements of the simulated chip, sequential and in threads.

Usage: .venv/bin/python bench/chip_measurements.py [--qubits 4] [--repeats 3]

Prints the median wall time of one full single-qubit calibration chain per step, and the
ratio of calibrating all qubits in threads (one per qubit) to calibrating them one after
the other, measured in the same process and run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from qcodes.instrument import Instrument

from qops.calibration.graph import CALIBRATION_STEPS, Scope
from qops.calibration.measurement import MeasurementContext
from qops.calibration.steps import run_step
from qops.chip import SimulatedChip


class _Tags(Instrument):
    def __init__(self) -> None:
        super().__init__("qh_meta")
        self.tags = self.add_parameter("tags", get_cmd=None, set_cmd=None, initial_value=[])
        self.attributes = self.add_parameter(
            "attributes", get_cmd=None, set_cmd=None, initial_value={}
        )

    def get_idn(self) -> dict[str, str | None]:
        return {"vendor": "bench", "model": "tags", "serial": None, "firmware": None}

    def reset(self) -> None:
        self.tags.set([])
        self.attributes.set({})

    def add_tags(self, tags: list[str]) -> None:
        self.tags.set([*self.tags.get(), *tags])

    def add_attributes(self, attributes: dict[str, str]) -> None:
        self.attributes.set({**self.attributes.get(), **attributes})


STEPS = [s for s, spec in CALIBRATION_STEPS.items() if spec.scope is Scope.QUBIT]


def _chain(context: MeasurementContext, qid: str, per_step: dict[str, list[float]]) -> None:
    values: dict[str, float] = {}
    for step in STEPS:
        start = time.perf_counter()
        result = run_step(context, step, qid, values)
        per_step.setdefault(step, []).append(time.perf_counter() - start)
        values.update({k: v.value for k, v in result.outputs.items()})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--qubits", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    tags = _Tags()
    sequential, parallel = [], []
    per_step: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        for repeat in range(args.repeats):
            for mode, times in (("seq", sequential), ("par", parallel)):
                chip = SimulatedChip(f"{mode}{repeat}", args.qubits, [], seed=repeat)
                context = MeasurementContext(chip, tags, Path(tmp) / f"{mode}{repeat}.db")
                start = time.perf_counter()
                if mode == "seq":
                    for qid in chip.qubit_ids:
                        _chain(context, qid, per_step)
                else:
                    with ThreadPoolExecutor(max_workers=args.qubits) as pool:
                        jobs = [pool.submit(_chain, context, q, {}) for q in chip.qubit_ids]
                        for job in jobs:
                            job.result()
                times.append(time.perf_counter() - start)
                chip.close()
    for step, samples in per_step.items():
        print(f"{step:22s} median {1e3 * statistics.median(samples):6.1f} ms")
    seq, par = statistics.median(sequential), statistics.median(parallel)
    print(f"{args.qubits} qubits, all six qubit steps: sequential {seq:.2f} s, threads {par:.2f} s")
    print(f"ratio threads / sequential: {par / seq:.2f}")


if __name__ == "__main__":
    main()
