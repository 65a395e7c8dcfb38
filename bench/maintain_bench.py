"""Measurement points of ``maintain`` against a full calibration, on a 5-qubit chip.

Usage: .venv/bin/python bench/maintain_bench.py [--qubits 5] [--drift-qubit Q2] [--drift-hz 2e6]
       .venv/bin/python bench/maintain_bench.py --sweep-checks 30

In a fresh embedded MongoDB and a temporary Prefect API: calibrates a chip of ``--qubits``
qubits in a line (the baseline), runs ``maintain`` on it undrifted, drifts one qubit's
frequency (``qops chip drift``'s offsets) and runs ``maintain`` again, then once more. For
each run it counts the measurement points (rows of the QCoDeS runs the run wrote), the
checks and the recalibrations, and says whether every value ended in spec; for the drifted
qubit it compares the recorded frequency with the chip's hidden one.

``--sweep-checks N`` instead runs every check at the hidden values of N chips (seeds 0 to
N-1, three qubits in a line) and counts the verdicts that are not in spec (false alarms).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import yaml


def _points(database: Path, after_run: int) -> tuple[int, int]:
    """Rows of the QCoDeS runs after ``after_run``, and the last run id."""
    with sqlite3.connect(database) as db:
        runs = db.execute(
            "SELECT run_id, result_table_name FROM runs WHERE run_id > ? ORDER BY run_id",
            (after_run,),
        ).fetchall()
        total = sum(
            db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for _, table in runs
        )
    last = runs[-1][0] if runs else after_run
    return total, last


def sweep_checks(chips: int) -> None:
    """Every check at the hidden values of ``chips`` chips: count the false alarms."""
    from qops.calibration.graph import CALIBRATION_STEPS, Scope, input_key
    from qops.calibration.instruments import metadata_instrument
    from qops.calibration.measurement import MeasurementContext
    from qops.chip import SimulatedChip
    from qops.maintenance.checks import run_check
    from qops.maintenance.policy import load_policy

    policy = load_policy()
    counts: dict[str, list[int]] = {}
    alarms: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        for seed in range(chips):
            chip = SimulatedChip(f"sweep{seed}", 3, [[0, 1], [1, 2]], seed=seed, epoch=seed % 5)
            context = MeasurementContext(chip, metadata_instrument(), Path(tmp) / f"{seed}.db")
            for step, spec in CALIBRATION_STEPS.items():
                pair = spec.scope is Scope.PAIR
                for target in ("Q0-Q1", "Q1-Q2") if pair else chip.qubit_ids:
                    if pair:
                        values = {
                            input_key(n, q): float(getattr(chip.truth(q), n))
                            for q in target.split("-")
                            for n in spec.inputs
                        }
                        values["cz_fidelity"] = chip.pair_truth(target).cz_fidelity
                    else:
                        truth = chip.truth(target)
                        values = {
                            n: float(getattr(truth, n)) for n in (*spec.inputs, *spec.outputs)
                        }
                    result = run_check(context, step, target, values, policy)
                    tally = counts.setdefault(step.value, [0, 0])
                    tally[0] += 1
                    if not result.passed:
                        tally[1] += 1
                        alarms.append(f"seed {seed} {step} {target}: {result.reasons[0]}")
            chip.close()
    print(json.dumps({"checks_and_false_alarms": counts, "false_alarms": alarms}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--qubits", type=int, default=5)
    parser.add_argument("--drift-qubit", default="Q2")
    parser.add_argument("--drift-hz", type=float, default=2e6)
    parser.add_argument("--sweep-checks", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if args.sweep_checks:
        sweep_checks(args.sweep_checks)
        return

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        from qops.mongo import EmbeddedMongo

        embedded = EmbeddedMongo(root / "mongo")
        url = embedded.ensure_running().url
        os.environ.update(
            QOPS_MONGODB_URL=url,
            QOPS_MONGODB_DB="bench_maintain",
            QOPS_DATA_DIR=str(root / "data"),
            QOPS_PROJECT_ID="bench",
        )
        config = root / "backend.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "name": "bench",
                    "chip_id": "bench-chip",
                    "nqubits": args.qubits,
                    "topology": [[i, i + 1] for i in range(args.qubits - 1)],
                    "pgs": ["X", "CZ"],
                }
            )
        )
        database = root / "lab.db"
        from prefect.testing.utilities import prefect_test_harness

        from flows.calibrate import calibrate
        from flows.maintain import maintain
        from qops.calibration.instruments import simulated_chip
        from qops.calibration.plan import ChipSpec, with_offsets
        from qops.chip.offsets import OffsetStore
        from qops.maintenance.report import Action

        rows: list[dict[str, object]] = []
        quiet = contextlib.redirect_stderr(io.StringIO())
        with prefect_test_harness(server_startup_timeout=120), quiet:
            start = time.perf_counter()
            full = calibrate(backend_config=str(config), database_path=str(database))
            seconds = time.perf_counter() - start
            points, last = _points(database, 0)
            steps = len(full.steps)
            rows.append(
                {
                    "run": "full calibration",
                    "points": points,
                    "checks": 0,
                    "recalibrated": steps,
                    "in_spec": not full.failed,
                    "seconds": seconds,
                }
            )
            baseline = points

            def run_maintain(label: str) -> None:
                nonlocal last
                start = time.perf_counter()
                report = maintain(backend_config=str(config), database_path=str(database))
                seconds = time.perf_counter() - start
                points, last = _points(database, last)
                rows.append(
                    {
                        "run": label,
                        "points": points,
                        "checks": len(report.checks),
                        "recalibrated": len(report.with_action(Action.RECALIBRATED)),
                        "recalibrated_steps": [
                            f"{n.step} {n.target}" for n in report.with_action(Action.RECALIBRATED)
                        ],
                        "in_spec": report.in_spec,
                        "seconds": seconds,
                        "fewer_points_than_full": round(baseline / max(points, 1), 1),
                    }
                )
                if label.startswith("maintain, drifted"):
                    spec = with_offsets(
                        ChipSpec.from_file(config, 1234), Path(os.environ["QOPS_DATA_DIR"])
                    )
                    chip = simulated_chip(spec, report.epoch)
                    truth = chip.truth(args.drift_qubit).qubit_frequency
                    recorded = next(
                        c.after
                        for c in report.changes
                        if c.parameter_name == "qubit_frequency" and c.qid == args.drift_qubit
                    )
                    rows[-1]["drifted_frequency_error_hz"] = round(float(recorded) - truth)  # type: ignore[arg-type]

            run_maintain("maintain, undrifted")
            OffsetStore(Path(os.environ["QOPS_DATA_DIR"])).add(
                "bench-chip", args.drift_qubit, {"qubit_frequency": args.drift_hz}
            )
            run_maintain(f"maintain, drifted ({args.drift_qubit} {args.drift_hz:+g} Hz)")
            run_maintain("maintain, after the drift was fixed")
        embedded.stop()
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
