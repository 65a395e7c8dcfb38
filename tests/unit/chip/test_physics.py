import numpy as np
import pytest

from qops.chip import physics

A_PI = 0.4
TAU = 40e-9


def _p1_after_pulse(amplitude: float, detuning: float) -> float:
    bloch = physics.pulse(physics.ground_states(1), amplitude, detuning, A_PI, TAU)
    return float(physics.excited_population(bloch)[0])


def test_pulse_pi_amplitude_on_resonance_excites_fully() -> None:
    assert _p1_after_pulse(A_PI, 0.0) == pytest.approx(1.0, abs=1e-12)
    assert _p1_after_pulse(A_PI / 2, 0.0) == pytest.approx(0.5, abs=1e-12)


def test_pulse_detuned_drive_cannot_fully_excite() -> None:
    amplitudes = np.linspace(0, 2 * A_PI, 401)
    bloch = physics.pulse(physics.ground_states(amplitudes.size), amplitudes, 6e6, A_PI, TAU)
    assert physics.excited_population(bloch).max() < 0.9


def test_evolve_echo_refocuses_static_detuning() -> None:
    def echo(detuning: float) -> float:
        b = physics.ground_states(1)
        b = physics.pulse(b, A_PI / 2, 0.0, A_PI, TAU)
        b = physics.evolve(b, 5e-6, detuning, 1.0, 1.0)
        b = physics.pulse(b, A_PI, 0.0, A_PI, TAU)
        b = physics.evolve(b, 5e-6, detuning, 1.0, 1.0)
        b = physics.pulse(b, A_PI / 2, 0.0, A_PI, TAU)
        return float(physics.excited_population(b)[0])

    assert echo(123e3) == pytest.approx(echo(0.0), abs=1e-9)


def test_evolve_relaxes_excited_state_with_t1() -> None:
    excited = physics.pulse(physics.ground_states(1), A_PI, 0.0, A_PI, TAU)
    later = physics.evolve(excited, 50e-6, 0.0, 50e-6, 30e-6)
    assert physics.excited_population(later)[0] == pytest.approx(np.exp(-1), rel=1e-9)


def test_separation_in_sigmas_round_trips_fidelity() -> None:
    for fidelity in (0.8, 0.93, 0.99):
        d = physics.separation_in_sigmas(fidelity)
        assert physics.fidelity_from_separation(d) == pytest.approx(fidelity)
