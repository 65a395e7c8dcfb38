import numpy as np
import pytest
from scipy.optimize import OptimizeWarning

from qops.chip import fitting
from qops.chip.fitting import FitProblem

RNG_SEED = 7


def _noise(size: int, sigma: float) -> np.ndarray:
    return np.random.default_rng(RNG_SEED).normal(0, sigma, size)


def test_fit_exponential_decay_recovers_time_within_errors() -> None:
    t = np.linspace(0, 200e-6, 61)
    y = 0.05 + 0.85 * np.exp(-t / 40e-6) + _noise(t.size, 0.01)
    fit = fitting.fit_exponential_decay(t, y, "T1")
    assert abs(fit.time.value - 40e-6) < 4 * fit.time.error
    assert fit.time.error < 2e-6


def test_fit_exponential_decay_slower_than_sweep_raises() -> None:
    t = np.linspace(0, 10e-6, 41)
    y = 0.9 * np.exp(-t / 1e-3) + _noise(t.size, 0.01)
    with pytest.raises(FitProblem, match="T1"):
        fitting.fit_exponential_decay(t, y, "T1")


def test_fit_lorentzian_dip_pure_noise_raises_no_resonance() -> None:
    f = np.linspace(4.99e9, 5.01e9, 161)
    with pytest.raises(FitProblem, match=r"no resonance found in 4\.990000–5\.010000 GHz"):
        fitting.fit_lorentzian_dip(f, 0.01 + _noise(f.size, 3e-4))


def test_fit_rabi_flat_trace_raises_not_significant() -> None:
    a = np.linspace(0, 1, 81)
    with pytest.raises(FitProblem, match="Rabi contrast"):
        fitting.fit_rabi(a, 0.05 + _noise(a.size, 0.01))


def test_fit_ramsey_recovers_fringe_frequency() -> None:
    t = np.linspace(0, 50e-6, 201)
    y = 0.5 + 0.45 * np.exp(-t / 15e-6) * np.cos(2 * np.pi * 1.03e6 * t) + _noise(t.size, 0.015)
    fit = fitting.fit_ramsey(t, y)
    assert abs(fit.frequency.value - 1.03e6) < 4 * fit.frequency.error
    assert abs(fit.decay_time.value - 15e-6) < 4 * fit.decay_time.error


def test_fit_curve_model_not_finite_raises_not_converged() -> None:
    x = np.linspace(0, 1, 20)
    with (
        pytest.raises(FitProblem, match="did not converge"),
        pytest.warns(OptimizeWarning, match="Covariance"),
    ):
        fitting.fit_curve(lambda xs, a: np.full_like(xs, np.nan) * a, x, x, [1.0])


def test_fit_assignment_identical_clouds_raises_not_distinguishable() -> None:
    prepared = np.repeat([0.0, 1.0], 500)
    i, q = _noise(1000, 1e-3), np.random.default_rng(3).normal(0, 1e-3, 1000)
    with pytest.raises(FitProblem, match="not distinguishable"):
        fitting.fit_assignment(prepared, i, q)
