import json
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from qops.chip import (
    SimulatedChip,
    TopologyError,
    UnknownPairError,
    UnknownQubitError,
    drift_epoch,
)
from qops.errors import ConfigurationError
from tests.chip_support import SEED, open_chip


def _traces(chip: SimulatedChip, qid: str) -> list[np.ndarray]:
    qubit = chip.qubit(qid)
    truth = chip.truth(qid)
    qubit.drive_frequency.set(truth.qubit_frequency)
    qubit.drive_amplitude.set(truth.pi_amplitude)
    delays = np.linspace(0, 100e-6, 31)
    return [
        qubit.acquire_rabi(np.linspace(0, 1, 31)),
        qubit.acquire_t1(delays),
        qubit.acquire_ramsey(delays),
        qubit.acquire_single_shots(50)[2],
    ]


def test_simulated_chip_same_seed_same_truth_and_data() -> None:
    with open_chip("first") as first:
        truth_a, data_a = first.truth("Q1"), _traces(first, "Q1")
    with open_chip("second") as second:
        truth_b, data_b = second.truth("Q1"), _traces(second, "Q1")
    assert truth_a == truth_b
    for a, b in zip(data_a, data_b, strict=True):
        np.testing.assert_array_equal(a, b)


def test_simulated_chip_other_seed_other_truth_and_data() -> None:
    with open_chip("first") as first:
        truth_a, data_a = first.truth("Q0"), _traces(first, "Q0")
    with open_chip("second", seed=SEED + 1) as second:
        truth_b, data_b = second.truth("Q0"), _traces(second, "Q0")
    assert truth_a != truth_b
    assert not np.array_equal(data_a[1], data_b[1])


def test_simulated_chip_noise_of_a_qubit_independent_of_other_qubits_calls() -> None:
    with open_chip("alone") as alone:
        expected = _traces(alone, "Q2")
    with open_chip("busy") as busy:
        threads = [threading.Thread(target=_traces, args=(busy, q)) for q in ("Q0", "Q1")]
        for thread in threads:
            thread.start()
        got = _traces(busy, "Q2")
        for thread in threads:
            thread.join()
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)


def test_simulated_chip_repeated_measurement_new_noise() -> None:
    with open_chip() as chip, open_chip("later", epoch=1) as later:
        first, second = _traces(chip, "Q0"), _traces(chip, "Q0")
        next_epoch = _traces(later, "Q0")
    assert not np.array_equal(first[1], second[1])
    assert not np.array_equal(first[3], next_epoch[3])


def test_simulated_chip_drift_small_deterministic_steps() -> None:
    with (
        open_chip("first") as first,
        open_chip("second") as second,
        open_chip("third", epoch=3) as third,
    ):
        before = first.truth("Q0")
        first.drift(3)
        second.drift(1)
        second.drift(2)
        after = first.truth("Q0")
        assert first.epoch == second.epoch == third.epoch == 3
        assert after == second.truth("Q0") == third.truth("Q0")
        assert first.pair_truth("Q0-Q1") == second.pair_truth("Q0-Q1") == third.pair_truth("Q0-Q1")
        np.testing.assert_array_equal(_traces(first, "Q0")[1], _traces(third, "Q0")[1])
    assert after != before
    assert abs(after.qubit_frequency - before.qubit_frequency) < 500e3
    assert after.t1 == pytest.approx(before.t1, rel=0.5)
    assert after.t2_star < after.t2_echo <= 2 * after.t1


@pytest.mark.parametrize(
    ("n_qubits", "topology", "reason"),
    [
        (0, [], "at least one qubit"),
        (2, [[0, 2]], "outside 0..1"),
        (2, [[1, 1]], "to itself"),
        (3, [[0, 1], [1, 0]], "listed twice"),
        (3, [[0, 1, 2]], "not a pair"),
    ],
)
def test_simulated_chip_bad_topology_raises_topology_error(
    n_qubits: int, topology: list[list[int]], reason: str
) -> None:
    with pytest.raises(TopologyError, match=reason):
        SimulatedChip("bad", n_qubits, topology, seed=1)


def test_simulated_chip_negative_drift_raises_configuration_error(chip: SimulatedChip) -> None:
    with pytest.raises(ConfigurationError, match="steps='-1'"):
        chip.drift(-1)
    with pytest.raises(ConfigurationError, match="epoch='-2'"):
        SimulatedChip("early", 2, [], seed=1, epoch=-2)
    assert chip.epoch == 0


def test_simulated_chip_unknown_qubit_raises_naming_qubit_and_known(chip: SimulatedChip) -> None:
    with pytest.raises(
        UnknownQubitError, match=r"'Q7' is not on chip 'chip' \(qubits: Q0, Q1, Q2\)"
    ):
        chip.qubit("Q7")


def test_simulated_chip_uncoupled_pair_raises_naming_coupled_pairs(chip: SimulatedChip) -> None:
    with pytest.raises(UnknownPairError, match=r"'Q0-Q2' is not coupled.*Q0-Q1, Q1-Q2"):
        chip.pair("Q0-Q2")
    with pytest.raises(UnknownPairError, match="'Q0Q1'"):
        chip.pair("Q0Q1")
    with pytest.raises(UnknownQubitError, match="'Q9'"):
        chip.pair("Q0-Q9")


def test_simulated_chip_pair_either_order_same_channel(chip: SimulatedChip) -> None:
    assert chip.pair("Q1-Q0") is chip.pair("Q0-Q1")
    assert chip.pair_ids == ("Q0-Q1", "Q1-Q2")


def test_simulated_qubit_parameters_typed_with_units_and_validators(chip: SimulatedChip) -> None:
    qubit = chip.qubit("Q0")
    assert qubit.drive_frequency.unit == "Hz"
    assert qubit.drive_amplitude.unit == "V"
    assert qubit.delay.unit == "s"
    assert qubit.drive_frequency.label == "Drive frequency"
    with pytest.raises(ValueError, match="drive_amplitude"):
        qubit.drive_amplitude.set(5.0)
    with pytest.raises(ValueError, match="drive_frequency"):
        qubit.drive_frequency.set(100.0)


def test_simulated_chip_snapshot_hides_true_values(chip: SimulatedChip) -> None:
    snapshot = json.dumps(chip.snapshot(update=True))
    truth = chip.truth("Q0")
    assert "drive_frequency" in snapshot
    assert repr(truth.qubit_frequency) not in snapshot
    assert repr(truth.t1) not in snapshot


def test_drift_epoch_counts_whole_intervals_since_origin() -> None:
    origin = datetime(2026, 1, 1, tzinfo=UTC)
    day = timedelta(days=1)
    assert drift_epoch(origin + 3 * day + timedelta(hours=23), origin, day) == 3
    assert drift_epoch(origin - day, origin, day) == 0
    with pytest.raises(ConfigurationError, match="interval"):
        drift_epoch(origin, origin, timedelta(0))
    with pytest.raises(ConfigurationError, match="time zone"):
        drift_epoch(datetime(2026, 1, 2), origin, day)
