"""Pure signal models of a driven, decohering transmon qubit, vectorised over sweep points.

The qubit state is a Bloch vector ``(x, y, z)`` with the ground state at ``z = +1``, in the
frame rotating at the drive frequency. A pulse of amplitude ``a`` and duration ``τ``
rotates about ``(Ω, 0, Δ)`` with Rabi rate ``Ω = π a / (a_π τ)`` and detuning
``Δ = 2π (f_drive − f_qubit)``; free evolution precesses about ``z`` by ``Δ t``, shrinks the
transverse part by ``exp(−t / T2)`` and relaxes ``z`` towards ``+1`` with ``T1``. Because the
detuning enters both, a drive off the qubit frequency blurs Rabi contrast and shifts
Ramsey fringes, as on a real chip.

Every function here is deterministic; noise is added by the caller with its own generator.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

FloatArray = NDArray[np.float64]

GROUND: FloatArray = np.array([0.0, 0.0, 1.0])


def ground_states(n: int) -> FloatArray:
    """Return ``n`` Bloch vectors in the ground state, shape ``(n, 3)``."""
    return np.tile(GROUND, (n, 1))


def rotate(bloch: FloatArray, axis: FloatArray, angle: FloatArray) -> FloatArray:
    """Rotate Bloch vectors right-handedly about unit ``axis`` by ``angle`` (Rodrigues).

    Args:
        bloch: Shape ``(n, 3)``.
        axis: Unit vectors, shape ``(n, 3)`` or ``(3,)``.
        angle: Angles in rad, shape ``(n,)`` or scalar.
    """
    k = np.broadcast_to(axis, bloch.shape)
    theta = np.broadcast_to(np.asarray(angle, dtype=np.float64), bloch.shape[:1])[:, None]
    dot = np.sum(k * bloch, axis=1, keepdims=True)
    rotated = (
        bloch * np.cos(theta) + np.cross(k, bloch) * np.sin(theta) + k * dot * (1 - np.cos(theta))
    )
    return np.asarray(rotated, dtype=np.float64)


def pulse(
    bloch: FloatArray,
    amplitude: FloatArray | float,
    detuning: float,
    pi_amplitude: float,
    duration: float,
) -> FloatArray:
    """Apply a square drive pulse about ``x``.

    Args:
        bloch: Bloch vectors, shape ``(n, 3)``.
        amplitude: Drive amplitude in V, per vector or one for all.
        detuning: Drive frequency minus qubit frequency, in Hz.
        pi_amplitude: The true π-pulse amplitude in V for this ``duration``.
        duration: Pulse duration in s.
    """
    n = bloch.shape[0]
    omega = np.broadcast_to(np.pi * np.asarray(amplitude) / (pi_amplitude * duration), (n,))
    delta = np.full(n, 2 * np.pi * detuning)
    rate = np.hypot(omega, delta)
    safe = np.where(rate > 0, rate, 1.0)
    axis = np.stack([omega / safe, np.zeros(n), delta / safe], axis=1)
    return rotate(bloch, axis, rate * duration)


def evolve(
    bloch: FloatArray, duration: FloatArray | float, detuning: float, t1: float, t2: float
) -> FloatArray:
    """Let the qubit evolve freely: precession at ``detuning`` (Hz), T1 and T2 decay (s)."""
    n = bloch.shape[0]
    t = np.broadcast_to(np.asarray(duration, dtype=np.float64), (n,))
    precessed = rotate(bloch, np.array([0.0, 0.0, 1.0]), 2 * np.pi * detuning * t)
    coherence = np.exp(-t / t2)[:, None]
    relaxed_z = 1 - (1 - precessed[:, 2]) * np.exp(-t / t1)
    out = precessed * coherence
    out[:, 2] = relaxed_z
    return out


def excited_population(bloch: FloatArray) -> FloatArray:
    """Return the excited-state population of each Bloch vector, in [0, 1]."""
    return np.clip((1 - bloch[:, 2]) / 2, 0.0, 1.0)


def lorentzian(x: FloatArray, center: float, hwhm: float) -> FloatArray:
    """Return a unit-height Lorentzian of half width at half maximum ``hwhm``."""
    return np.asarray(hwhm**2 / ((x - center) ** 2 + hwhm**2), dtype=np.float64)


def readout_error(fidelity: float) -> float:
    """Return the symmetric assignment error of single-shot readout of ``fidelity``."""
    return 1.0 - fidelity


def separation_in_sigmas(fidelity: float) -> float:
    """Return the distance of two equal Gaussian IQ clouds, in their σ, for ``fidelity``.

    With the threshold half way, each state is misassigned with probability
    ``Φ(−d / 2)``, so the assignment fidelity is ``1 − Φ(−d / 2)``.
    """
    return float(2 * ndtri(fidelity))


def fidelity_from_separation(separation_sigmas: float) -> float:
    """Inverse of :func:`separation_in_sigmas`."""
    return float(1 - ndtr(-separation_sigmas / 2))


def two_qubit_fidelity_to_decay(fidelity: float) -> float:
    """Return the depolarising decay per layer of a two-qubit gate of average ``fidelity``."""
    return 1 - 4 * (1 - fidelity) / 3


def decay_to_two_qubit_fidelity(decay: float) -> float:
    """Inverse of :func:`two_qubit_fidelity_to_decay`: ``(1 + 3 p) / 4``."""
    return (1 + 3 * decay) / 4
