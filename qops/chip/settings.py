"""Sweep settings of the calibration steps, with defaults that suit the simulated chip."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FrequencySettings(_Settings):
    """Resonator and qubit spectroscopy windows of ``CheckFrequency``.

    A centre left unset is the qubit's design value. Frequencies in Hz.
    """

    readout_center: float | None = Field(default=None, gt=0)
    readout_span: float = Field(default=16e6, gt=0)
    qubit_center: float | None = Field(default=None, gt=0)
    qubit_span: float = Field(default=20e6, gt=0)
    points: int = Field(default=161, ge=21, le=5001)


class RabiSettings(_Settings):
    """Amplitude sweep of ``CheckRabi``, from 0 to ``max_amplitude`` V."""

    max_amplitude: float = Field(default=1.0, gt=0, le=2)
    points: int = Field(default=81, ge=21, le=5001)


class DecaySettings(_Settings):
    """Delay sweep of ``CheckT1`` and ``CheckT2Echo``, from 0 to ``max_delay`` s."""

    max_delay: float = Field(default=300e-6, gt=0, le=10e-3)
    points: int = Field(default=61, ge=11, le=5001)


class RamseySettings(_Settings):
    """Delay sweep of ``CheckRamsey``.

    The drive is set ``artificial_detuning`` Hz above the input frequency so the fringes
    have a known sign; it must exceed the expected frequency error and stay well below
    the sampling limit ``points / (2 max_delay)``.
    """

    max_delay: float = Field(default=50e-6, gt=0, le=10e-3)
    points: int = Field(default=201, ge=21, le=5001)
    artificial_detuning: float = Field(default=1e6, gt=0)

    @model_validator(mode="after")
    def _resolvable(self) -> RamseySettings:
        nyquist = (self.points - 1) / (2 * self.max_delay)
        if self.artificial_detuning > 0.5 * nyquist:
            raise ValueError(
                f"artificial_detuning {self.artificial_detuning:g} Hz needs more than "
                f"{self.points} points over {self.max_delay:g} s (sampling limit {nyquist:g} Hz)"
            )
        return self


class ReadoutSettings(_Settings):
    """Single shots per prepared state of ``CheckReadoutFidelity``."""

    shots: int = Field(default=1000, ge=50, le=100_000)


class BenchmarkingSettings(_Settings):
    """Sequence lengths of ``CheckCZ``: ``points`` lengths spread geometrically up to
    ``max_length`` layers."""

    max_length: int = Field(default=200, ge=4, le=100_000)
    points: int = Field(default=25, ge=5, le=1000)
