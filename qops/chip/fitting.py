"""Fits of calibration traces, each with 1-sigma errors and a check that it is trustworthy.

Every fit first scans its nonlinear parameters on a grid, solving the linear ones (offset,
amplitude) by least squares at each grid point, and then refines the best point with
:func:`scipy.optimize.curve_fit`. The scan makes the fits independent of a hand-made
starting guess; the refinement gives the covariance the errors come from.

A fit that cannot be trusted raises :class:`FitProblem` with the reason in words; the
calibration steps (:mod:`qops.calibration.steps`) turn it into a
:class:`~qops.calibration.errors.FitError` naming the step, the qubit and the QCoDeS run, so
:class:`FitProblem` never reaches their callers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

from qops.chip import physics
from qops.chip.physics import FloatArray

MIN_SIGNIFICANCE = 5.0
"""A signal amplitude must be this many of its own errors away from zero to count."""
MAX_RELATIVE_ERROR = 0.5
"""An estimate whose error exceeds this fraction of its value is rejected."""

Model = Callable[..., FloatArray]


class FitProblem(Exception):  # noqa: N818 - internal, always re-raised as FitError
    """A fit failed or is not trustworthy; ``reason`` says why, in words."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Estimate:
    """A fitted value and its 1-sigma error (same unit)."""

    value: float
    error: float

    @property
    def significance(self) -> float:
        """How many errors the value is away from zero."""
        return abs(self.value) / self.error if self.error > 0 else float("inf")


def fit_curve(
    model: Model,
    x: FloatArray,
    y: FloatArray,
    start: Sequence[float],
    bounds: tuple[Sequence[float], Sequence[float]] | None = None,
) -> list[Estimate]:
    """Least-squares fit of ``model(x, *params)`` to ``y``; errors from the covariance.

    The covariance is scaled by the residual variance (the noise level is not known). A
    start outside ``bounds`` is moved inside them.

    Raises:
        FitProblem: The optimiser did not converge, or an error is not finite.
    """
    low = np.full(len(start), -np.inf) if bounds is None else np.asarray(bounds[0], float)
    high = np.full(len(start), np.inf) if bounds is None else np.asarray(bounds[1], float)
    p0 = np.clip(np.asarray(start, dtype=np.float64), low, high)
    try:
        params, covariance = curve_fit(model, x, y, p0=p0, bounds=(low, high), maxfev=5000)
    except (RuntimeError, ValueError) as e:
        raise FitProblem(f"fit did not converge: {e}") from e
    errors = np.sqrt(np.abs(np.diag(covariance)))
    if not np.all(np.isfinite(params)) or not np.all(np.isfinite(errors)):
        raise FitProblem("fit did not converge: the covariance of the parameters is not finite")
    return [Estimate(float(v), float(s)) for v, s in zip(params, errors, strict=True)]


def _scan(
    x: FloatArray,
    y: FloatArray,
    basis: Callable[..., Sequence[FloatArray]],
    grid: Iterable[tuple[float, ...]],
) -> tuple[tuple[float, ...], FloatArray]:
    """Return the grid point (and its linear coefficients) with the least squared residual.

    ``basis(x, *theta)`` returns the columns the data is a linear combination of. It is
    called once, with ``x`` as a row and each parameter as a column over the grid, so all
    grid points are built and solved at once (batched normal equations).
    """
    thetas = np.asarray(list(grid), dtype=np.float64)
    if thetas.size == 0:
        raise FitProblem("no starting point: the scan grid is empty")
    parts = basis(x[None, :], *(thetas[:, i, None] for i in range(thetas.shape[1])))
    columns = np.stack(np.broadcast_arrays(*parts), axis=-1)
    transposed = columns.transpose(0, 2, 1)
    normal = transposed @ columns
    # A tiny ridge keeps near-degenerate columns solvable (a decay much slower than the
    # sweep looks like the offset).
    ridge = 1e-12 * np.trace(normal, axis1=1, axis2=2)[:, None, None] * np.eye(normal.shape[1])
    coefficients = np.linalg.solve(normal + ridge, (transposed @ y)[..., None])
    residuals = np.sum(((columns @ coefficients)[..., 0] - y) ** 2, axis=1)
    best = int(np.argmin(residuals))
    return tuple(float(v) for v in thetas[best]), np.asarray(
        coefficients[best, :, 0], dtype=np.float64
    )


def _require_significant(estimate: Estimate, what: str) -> None:
    if estimate.significance < MIN_SIGNIFICANCE:
        raise FitProblem(
            f"{what} {estimate.value:.3g} ± {estimate.error:.2g} is not significant "
            f"(below {MIN_SIGNIFICANCE:g} sigma)"
        )


def _require_precise(estimate: Estimate, what: str, unit: str) -> None:
    if estimate.error > MAX_RELATIVE_ERROR * abs(estimate.value):
        raise FitProblem(
            f"error of {what} is too large: {estimate.value:.4g} ± {estimate.error:.2g} {unit}"
        )


# --- Lorentzian dip (spectroscopy) -------------------------------------------------------


@dataclass(frozen=True)
class DipFit:
    """A Lorentzian dip: ``offset − depth · L(f; center, hwhm)``."""

    center: Estimate
    hwhm: Estimate
    depth: Estimate
    offset: Estimate


def _dip(f: FloatArray, center: float, hwhm: float, depth: float, offset: float) -> FloatArray:
    return offset - depth * physics.lorentzian(f, center, hwhm)


def fit_lorentzian_dip(frequencies: FloatArray, signal: FloatArray) -> DipFit:
    """Find the Lorentzian dip in a frequency sweep.

    Raises:
        FitProblem: No significant dip in the window, or its centre is not well defined.
    """
    low, high = float(frequencies.min()), float(frequencies.max())
    span = high - low
    step = span / max(frequencies.size - 1, 1)
    min_width, max_width = 2 * step, span / 2
    widths = np.geomspace(min_width, span / 4, 10)
    # Scale to MHz-like units so the optimiser works with numbers near 1.
    x = (frequencies - low) / span

    def basis(xs: FloatArray, center: FloatArray, width: FloatArray) -> list[FloatArray]:
        return [np.ones_like(xs), -(width**2) / ((xs - center) ** 2 + width**2)]

    (center0, width0), (offset0, depth0) = _scan(
        x, signal, basis, itertools.product(x[1:-1], widths / span)
    )
    window = f"{low / 1e9:.6f}–{high / 1e9:.6f} GHz"
    if depth0 <= 0:
        raise FitProblem(f"no resonance found in {window}: the trace has no dip")
    center, width, depth, offset = fit_curve(
        _dip,
        x,
        signal,
        (center0, width0, depth0, offset0),
        bounds=((0, min_width / span, 0, -np.inf), (1, max_width / span, np.inf, np.inf)),
    )
    if depth.significance < MIN_SIGNIFICANCE:
        raise FitProblem(
            f"no resonance found in {window}: dip depth {depth.value:.3g} ± {depth.error:.2g} "
            f"is below {MIN_SIGNIFICANCE:g} sigma"
        )
    result = DipFit(
        center=Estimate(low + center.value * span, center.error * span),
        hwhm=Estimate(width.value * span, width.error * span),
        depth=depth,
        offset=offset,
    )
    if result.center.error > span / 10:
        raise FitProblem(
            f"resonance centre in {window} is not defined: error {result.center.error:.3g} Hz"
        )
    return result


# --- Rabi oscillation --------------------------------------------------------------------


@dataclass(frozen=True)
class RabiFit:
    """``offset + contrast · sin²(π a / (2 a_π))``."""

    pi_amplitude: Estimate
    contrast: Estimate
    offset: Estimate


def _rabi(a: FloatArray, pi_amplitude: float, contrast: float, offset: float) -> FloatArray:
    return np.asarray(offset + contrast * np.sin(np.pi * a / (2 * pi_amplitude)) ** 2)


def fit_rabi(amplitudes: FloatArray, population: FloatArray) -> RabiFit:
    """Fit a Rabi oscillation over drive amplitude; the π amplitude must be in the sweep.

    Raises:
        FitProblem: No significant oscillation, or the first maximum is outside the sweep.
    """
    top = float(amplitudes.max())
    step = top / max(amplitudes.size - 1, 1)

    def basis(a: FloatArray, pi_amplitude: FloatArray) -> list[FloatArray]:
        return [np.ones_like(a), np.sin(np.pi * a / (2 * pi_amplitude)) ** 2]

    (pi0,), (offset0, contrast0) = _scan(
        amplitudes, population, basis, ((p,) for p in np.linspace(2 * step, top, 200))
    )
    pi_amplitude, contrast, offset = fit_curve(
        _rabi,
        amplitudes,
        population,
        (pi0, max(contrast0, 1e-3), offset0),
        bounds=((step, 0, -1), (2 * top, 2, 2)),
    )
    _require_significant(contrast, "Rabi contrast")
    if pi_amplitude.value > top:
        raise FitProblem(
            f"π amplitude {pi_amplitude.value:.3g} V is beyond the sweep (up to {top:.3g} V)"
        )
    _require_precise(pi_amplitude, "π amplitude", "V")
    return RabiFit(pi_amplitude=pi_amplitude, contrast=contrast, offset=offset)


# --- Exponential decay (T1, echo) --------------------------------------------------------


@dataclass(frozen=True)
class DecayFit:
    """``offset + amplitude · exp(−t / time)``."""

    time: Estimate
    amplitude: Estimate
    offset: Estimate


def _decay(t: FloatArray, time: float, amplitude: float, offset: float) -> FloatArray:
    return np.asarray(offset + amplitude * np.exp(-t / time))


def fit_exponential_decay(times: FloatArray, signal: FloatArray, what: str) -> DecayFit:
    """Fit an exponential decay (of either sign) and its time constant.

    Args:
        times: Delays in s.
        signal: The measured trace.
        what: Name of the time constant, for messages (``T1``).

    Raises:
        FitProblem: No significant decay, a time constant far beyond the sweep, or an
            error bar too large.
    """
    longest = float(times.max())
    step = longest / max(times.size - 1, 1)

    def basis(t: FloatArray, time: FloatArray) -> list[FloatArray]:
        return [np.ones_like(t), np.exp(-t / time)]

    (time0,), (offset0, amplitude0) = _scan(
        times, signal, basis, ((tau,) for tau in np.geomspace(step, 10 * longest, 120))
    )
    scale = longest
    time, amplitude, offset = fit_curve(
        lambda t, tau, a, b: _decay(t * scale, tau * scale, a, b),
        times / scale,
        signal,
        (time0 / scale, amplitude0, offset0),
        bounds=((step / (2 * scale), -2, -1), (100, 2, 2)),
    )
    if amplitude.significance < MIN_SIGNIFICANCE:
        residual = signal - _decay(times, time.value * scale, amplitude.value, offset.value)
        edge = max(3, times.size // 5)
        change = abs(float(np.mean(signal[:edge]) - np.mean(signal[-edge:])))
        if change > MIN_SIGNIFICANCE * float(np.std(residual)) * np.sqrt(2 / edge):
            raise FitProblem(
                f"the signal is still decaying at the end of the sweep ({longest:.3g} s): "
                f"{what} cannot be resolved, sweep longer"
            )
        _require_significant(amplitude, f"{what} decay amplitude")
    result = Estimate(time.value * scale, time.error * scale)
    if result.value > 3 * longest:
        raise FitProblem(
            f"{what} of {result.value:.3g} s is far beyond the sweep (up to {longest:.3g} s)"
        )
    _require_precise(result, what, "s")
    return DecayFit(time=result, amplitude=amplitude, offset=offset)


# --- Ramsey fringes ----------------------------------------------------------------------


@dataclass(frozen=True)
class RamseyFit:
    """``offset + amplitude · exp(−t / decay_time) · cos(2π f t + phase)``."""

    frequency: Estimate
    decay_time: Estimate
    amplitude: Estimate
    phase: Estimate
    offset: Estimate


def _ramsey(
    t: FloatArray, frequency: float, decay: float, amplitude: float, phase: float, offset: float
) -> FloatArray:
    return np.asarray(
        offset + amplitude * np.exp(-t / decay) * np.cos(2 * np.pi * frequency * t + phase)
    )


def fit_ramsey(times: FloatArray, population: FloatArray) -> RamseyFit:
    """Fit damped Ramsey fringes: their frequency (Hz) and decay time (s).

    Raises:
        FitProblem: No significant fringes, fewer than two fringes or too close to the
            sampling limit, or an error bar too large.
    """
    longest = float(times.max())
    step = longest / max(times.size - 1, 1)
    nyquist = 1 / (2 * step)
    spectrum = np.abs(np.fft.rfft(population - population.mean()))
    bins = np.fft.rfftfreq(times.size, step)
    peak = int(np.argmax(spectrum[1:])) + 1
    resolution = bins[1]
    frequencies = np.linspace(
        max(bins[peak] - resolution, resolution / 2), bins[peak] + resolution, 9
    )
    decays = np.geomspace(5 * step, 5 * longest, 20)

    def basis(t: FloatArray, frequency: FloatArray, decay: FloatArray) -> list[FloatArray]:
        envelope = np.exp(-t / decay)
        phase = 2 * np.pi * frequency * t
        return [np.ones_like(t), envelope * np.cos(phase), envelope * np.sin(phase)]

    (f0, decay0), (offset0, c, s) = _scan(
        times, population, basis, itertools.product(frequencies, decays)
    )
    scale = longest
    frequency, decay, amplitude, phase, offset = fit_curve(
        lambda t, f, tau, a, p, b: _ramsey(t * scale, f / scale, tau * scale, a, p, b),
        times / scale,
        population,
        (f0 * scale, decay0 / scale, float(np.hypot(c, s)), float(np.arctan2(-s, c)), offset0),
        bounds=((0, step / scale, 0, -4 * np.pi, -1), (nyquist * scale, 100, 2, 4 * np.pi, 2)),
    )
    _require_significant(amplitude, "Ramsey fringe amplitude")
    fringe = Estimate(frequency.value / scale, frequency.error / scale)
    if fringe.value < 2 / longest or fringe.value > 0.8 * nyquist:
        raise FitProblem(
            f"fringe frequency {fringe.value:.4g} Hz is outside what the sweep resolves "
            f"({2 / longest:.3g}–{0.8 * nyquist:.3g} Hz)"
        )
    decay_time = Estimate(decay.value * scale, decay.error * scale)
    _require_precise(decay_time, "T2*", "s")
    return RamseyFit(
        frequency=fringe, decay_time=decay_time, amplitude=amplitude, phase=phase, offset=offset
    )


# --- Randomized benchmarking -------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkingFit:
    """``offset + amplitude · decay^m`` over sequence length ``m``."""

    decay: Estimate
    amplitude: Estimate
    offset: Estimate


def _benchmarking(m: FloatArray, decay: float, amplitude: float, offset: float) -> FloatArray:
    return np.asarray(offset + amplitude * decay**m)


def fit_benchmarking_decay(lengths: FloatArray, survival: FloatArray) -> BenchmarkingFit:
    """Fit the decay per layer of a randomized-benchmarking survival curve.

    Raises:
        FitProblem: No significant decay, or the decay per layer is not well defined.
    """

    def basis(m: FloatArray, decay: FloatArray) -> list[FloatArray]:
        return [np.ones_like(m), decay**m]

    (decay0,), (offset0, amplitude0) = _scan(
        lengths, survival, basis, ((p,) for p in np.linspace(0.5, 0.9999, 400))
    )
    decay, amplitude, offset = fit_curve(
        _benchmarking,
        lengths,
        survival,
        (decay0, amplitude0, offset0),
        bounds=((0, -2, -1), (1, 2, 2)),
    )
    _require_significant(amplitude, "benchmarking decay amplitude")
    infidelity = Estimate(1 - decay.value, decay.error)
    _require_precise(infidelity, "error per layer", "")
    return BenchmarkingFit(decay=decay, amplitude=amplitude, offset=offset)


# --- Single-shot readout -----------------------------------------------------------------


@dataclass(frozen=True)
class AssignmentFit:
    """Assignment fidelity ``1 − (P(1|0) + P(0|1)) / 2`` and the two error rates."""

    fidelity: Estimate
    error_ground: Estimate
    error_excited: Estimate
    separation: float
    """Distance between the two clouds' medians, in V."""


def fit_assignment(prepared: FloatArray, i: FloatArray, q: FloatArray) -> AssignmentFit:
    """Assign single shots to states with a threshold half way between the two clouds.

    The clouds' centres are the medians of the shots of each prepared state (robust to
    the few shots that relaxed or were not excited); shots are projected on the line
    through them and cut half way. The errors are binomial.

    Raises:
        FitProblem: The two prepared states are not distinguishable.
    """
    points = np.stack([i, q], axis=1)
    ground = np.median(points[prepared == 0], axis=0)
    excited = np.median(points[prepared == 1], axis=0)
    axis = excited - ground
    separation = float(np.hypot(*axis))
    if separation == 0:
        raise FitProblem("the ground and excited IQ clouds coincide")
    projected = (points - ground) @ axis / separation
    called_excited = projected > separation / 2
    n0 = int(np.sum(prepared == 0))
    n1 = int(np.sum(prepared == 1))
    e0 = float(np.mean(called_excited[prepared == 0]))
    e1 = float(np.mean(~called_excited[prepared == 1]))
    err0 = np.sqrt(max(e0 * (1 - e0), 1 / n0) / n0)
    err1 = np.sqrt(max(e1 * (1 - e1), 1 / n1) / n1)
    fidelity = Estimate(1 - (e0 + e1) / 2, float(np.hypot(err0, err1) / 2))
    contrast = Estimate(fidelity.value - 0.5, fidelity.error)
    if contrast.significance < MIN_SIGNIFICANCE:
        raise FitProblem(
            f"ground and excited states are not distinguishable: assignment fidelity "
            f"{fidelity.value:.3f} ± {fidelity.error:.2g}"
        )
    return AssignmentFit(
        fidelity=fidelity,
        error_ground=Estimate(e0, float(err0)),
        error_excited=Estimate(e1, float(err1)),
        separation=separation,
    )
