"""The maintenance policy: per-parameter direction, staleness limit, spec and trend length.

One YAML file holds it (:data:`DEFAULT_POLICY_FILE`, packaged with qops, documents every
key); a lab points ``QOPS_MAINTENANCE_POLICY`` at its own copy. A parameter the file does
not name follows its ``default`` entry.
"""

from __future__ import annotations

import math
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qops.maintenance.errors import PolicyError

DEFAULT_POLICY_FILE = "policy.yaml"
"""The packaged default policy, a resource of :mod:`qops.maintenance`."""


class Direction(StrEnum):
    """Which way a parameter is better."""

    HIGHER = "higher"
    LOWER = "lower"
    NONE = "none"


class ParameterPolicy(BaseModel):
    """How one parameter is judged.

    Attributes:
        direction: Which way is better; ``none`` judges no trend.
        stale_after_hours: Age after which the current version is stale; ``None``: never.
        minimum: Lowest in-spec value (inclusive), in the parameter's unit; ``None``: no bound.
        maximum: Highest in-spec value (inclusive); ``None``: no bound.
        trend_length: Consecutive worsening versions that make a degradation trend.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    direction: Direction = Direction.NONE
    stale_after_hours: float | None = Field(default=None, gt=0)
    minimum: float | None = None
    maximum: float | None = None
    trend_length: int = Field(default=3, ge=1, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        for name in ("minimum", "maximum", "stale_after_hours"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum:g} is above maximum {self.maximum:g}")
        return self


class _Check(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FrequencyCheckPolicy(_Check):
    """``CheckFrequency``'s check: spectroscopy at the current frequency and ± a linewidth.

    Attributes:
        qubit_tolerance_hz: Largest in-spec offset of the qubit line from ``qubit_frequency``.
        readout_tolerance_hz: Largest in-spec offset of the resonator from
            ``readout_frequency``.
        linewidth_hz: Spacing of the side points (about the line's half width).
        repeats: Times each point is measured (averaged against noise).
        min_depth: Smallest depth of the line at the centre point, in noise σ, below which
            the data is bad (no line where one is expected).
    """

    qubit_tolerance_hz: float = Field(default=250e3, gt=0)
    readout_tolerance_hz: float = Field(default=200e3, gt=0)
    linewidth_hz: float = Field(default=1e6, gt=0)
    repeats: int = Field(default=4, ge=1, le=100)
    min_depth: float = Field(default=4.0, gt=0)


class RabiCheckPolicy(_Check):
    """``CheckRabi``'s check: the excited population after no pulse and after a π pulse.

    Attributes:
        min_contrast: Smallest in-spec population difference (π pulse minus none).
        max_ground_population: Above this excited population with no pulse, bad data.
    """

    min_contrast: float = Field(default=0.6, gt=0, le=1)
    max_ground_population: float = Field(default=0.3, gt=0, le=1)


class DecayCheckPolicy(_Check):
    """``CheckT1``'s and ``CheckT2Echo``'s check: points at delay 0, the recorded time and 5×.

    Attributes:
        max_relative_drop: Largest in-spec drop of the estimated time below the recorded
            one, as a fraction of it.
        min_contrast: Below this population difference between delay 0 and 5× the time,
            bad data (nothing decays).
    """

    max_relative_drop: float = Field(default=0.3, gt=0, lt=1)
    min_contrast: float = Field(default=0.2, gt=0, le=1)


class RamseyCheckPolicy(_Check):
    """``CheckRamsey``'s check: fringes at five delays over one and a quarter periods.

    Attributes:
        artificial_detuning_hz: Detuning of the drive above ``qubit_frequency``.
        tolerance_hz: Largest in-spec offset of the qubit from ``qubit_frequency``.
        min_contrast: Below this fringe contrast, bad data.
    """

    artificial_detuning_hz: float = Field(default=1e6, gt=0)
    tolerance_hz: float = Field(default=100e3, gt=0)
    min_contrast: float = Field(default=0.3, gt=0, le=1)


class ReadoutCheckPolicy(_Check):
    """``CheckReadoutFidelity``'s check: fewer single shots than the calibration.

    Attributes:
        shots: Shots per prepared state.
        max_drop: Largest in-spec drop below the recorded fidelity (beyond 3σ of the shots).
    """

    shots: int = Field(default=100, ge=50, le=100_000)
    max_drop: float = Field(default=0.03, ge=0, le=1)


class BenchmarkingCheckPolicy(_Check):
    """``CheckCZ``'s check: two sequence lengths instead of a decay curve.

    Attributes:
        short_length: The short sequence (layers).
        long_length: The long sequence (layers).
        max_drop: Largest in-spec drop below the recorded CZ fidelity (beyond 3σ of the
            shot noise).
    """

    short_length: int = Field(default=1, ge=1)
    long_length: int = Field(default=24, ge=2, le=100_000)
    max_drop: float = Field(default=0.01, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.long_length <= self.short_length:
            raise ValueError(
                f"long_length {self.long_length} must exceed short_length {self.short_length}"
            )
        return self


class CheckPolicy(_Check):
    """The thresholds of the check of each calibration step (see
    :mod:`qops.maintenance.checks`)."""

    CheckFrequency: FrequencyCheckPolicy = FrequencyCheckPolicy()
    CheckRabi: RabiCheckPolicy = RabiCheckPolicy()
    CheckT1: DecayCheckPolicy = DecayCheckPolicy()
    CheckRamsey: RamseyCheckPolicy = RamseyCheckPolicy()
    CheckT2Echo: DecayCheckPolicy = DecayCheckPolicy()
    CheckReadoutFidelity: ReadoutCheckPolicy = ReadoutCheckPolicy()
    CheckCZ: BenchmarkingCheckPolicy = BenchmarkingCheckPolicy()


class MaintenancePolicy(BaseModel):
    """The rules for every parameter, and the thresholds of the checks.

    Attributes:
        default: Rules of a parameter not listed in ``parameters``.
        parameters: Rules per parameter name.
        checks: Thresholds of the check of each calibration step.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: ParameterPolicy = ParameterPolicy(stale_after_hours=24)
    parameters: dict[str, ParameterPolicy] = Field(default_factory=dict)
    checks: CheckPolicy = CheckPolicy()

    def of(self, parameter_name: str) -> ParameterPolicy:
        """The rules of ``parameter_name``."""
        return self.parameters.get(parameter_name, self.default)


def load_policy(path: Path | None = None) -> MaintenancePolicy:
    """Read a policy file; ``None`` reads the packaged default.

    Raises:
        PolicyError: The file cannot be read, is not YAML, or breaks a rule (the message
            names the file and the key).
    """
    source = str(path) if path is not None else f"qops/maintenance/{DEFAULT_POLICY_FILE}"
    try:
        if path is None:
            text = resources.files("qops.maintenance").joinpath(DEFAULT_POLICY_FILE).read_text()
        else:
            text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyError(source, f"cannot be read: {e}") from e
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PolicyError(source, f"is not valid YAML: {e}") from e
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PolicyError(source, f"must hold a mapping, found {type(raw).__name__}")
    try:
        return MaintenancePolicy.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise PolicyError(source, problems) from e


class MaintenanceSettings(BaseSettings):
    """Where the maintenance policy comes from.

    Environment variable: ``QOPS_MAINTENANCE_POLICY`` (a YAML file; unset: the packaged
    default).
    """

    model_config = SettingsConfigDict(env_prefix="QOPS_", extra="ignore")

    maintenance_policy: Path | None = Field(
        default=None, description="Maintenance policy file; unset uses the packaged default."
    )

    def policy(self) -> MaintenancePolicy:
        """The policy these settings name.

        Raises:
            PolicyError: The file cannot be used.
        """
        return load_policy(self.maintenance_policy)
