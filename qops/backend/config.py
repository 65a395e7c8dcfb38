"""Configuration of a 2300 meta server: what get_static reports and where state comes from."""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qops.backend.errors import BackendConfigError, CompilerPassError
from qops.backend.sources import CalibrationValue, qubit_labels
from qops.protocol.messages import CompilerConfig, CompilerPass

DEFAULT_REQ_ADDRESS = "tcp://*:4203"
DEFAULT_PUB_ADDRESS = "tcp://*:4204"


class ExecutionConfig(BaseModel):
    """Limits of running 2200's circuits (initialize, execute, terminate)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_shots: int = Field(
        default=100_000, gt=0, description="Largest number_of_shots one execute may ask for."
    )
    session_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="An initialized session with no request for this long is terminated by "
        "2300 itself, so a 2200 that died never keeps the chip EXECUTING.",
    )
    lease_s: float = Field(
        default=30.0, gt=0, description="Seconds the EXECUTING lease outlives a dead 2300."
    )
    seed: int | None = Field(
        default=None, description="Seed of the simulator's runs (repeatable counts); none: random."
    )


class BackendConfig(BaseModel):
    """What a 2300 backend is and reports. Read from YAML (:func:`load_backend_config`)
    or from the ``qops-meta-backend`` Prefect block.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="Name of the system, reported by get_static.")
    chip_id: str | None = Field(
        default=None,
        description="Chip whose calibration and state are served; default: the name.",
    )
    project_id: str | None = Field(
        default=None,
        min_length=1,
        description="Provenance project whose calibration is served; default: QOPS_PROJECT_ID.",
    )
    nqubits: int = Field(ge=0, description="Number of qubits.")
    topology: list[tuple[int, int]] = Field(
        default_factory=list, description="Edges between qubits, as pairs of qubit indices."
    )
    pgs: list[str] = Field(
        default_factory=list,
        description="Supported primitive gates, by name (QuIS names: X, mX90, measure).",
    )
    default_compiler_config: CompilerConfig = Field(default_factory=CompilerConfig)
    supports_raw_data: bool = False
    extra_metrics: dict[str, float] = Field(
        default_factory=dict, description="Plain numbers added to every get_dynamic answer."
    )
    calibration_source: Literal["provenance", "config"] = Field(
        default="provenance",
        description="provenance: the chip's current parameter versions, over the values of "
        "`calibration`; config: only the values of `calibration`.",
    )
    calibration: list[CalibrationValue] = Field(
        default_factory=list,
        description="Calibration values served for parameters the provenance store lacks.",
    )
    heartbeat_s: float = Field(default=1.0, gt=0, le=60, description="publish_state period.")
    calibration_timeout_s: float = Field(
        default=1.0,
        gt=0,
        description="Longest wait of get_dynamic for the provenance store before a failure "
        "reply; under the 2200 client's timeout (2 s by default).",
    )
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)

    @property
    def chip(self) -> str:
        """The chip id whose calibration and state this backend serves."""
        return self.chip_id or self.name

    @field_validator("pgs")
    @classmethod
    def _named_gates(cls, pgs: list[str]) -> list[str]:
        for gate in pgs:
            if not gate.strip():
                raise ValueError(f"gate {gate!r} has no name")
        return pgs

    @field_validator("default_compiler_config")
    @classmethod
    def _known_stages(cls, config: CompilerConfig) -> CompilerConfig:
        # The protocol lets a 2300 send other keys; in qops's own configuration an unknown
        # stage is a typo that would otherwise be served without ever running.
        other = sorted(config.other_stages())
        if other:
            raise ValueError(
                f"unknown compiler stage(s) {other}; expected decomposition, mapping, "
                "optimization or routing"
            )
        return config

    @field_validator("topology")
    @classmethod
    def _edges_non_negative(cls, topology: list[tuple[int, int]]) -> list[tuple[int, int]]:
        for a, b in topology:
            if a < 0 or b < 0:
                raise ValueError(f"edge {[a, b]} names a negative qubit index")
        return topology

    @field_validator("extra_metrics")
    @classmethod
    def _finite(cls, extra: dict[str, float]) -> dict[str, float]:
        for name, value in extra.items():
            if not math.isfinite(value):
                raise ValueError(f"extra metric {name} is {value}; JSON carries finite numbers")
        return extra

    @field_validator("calibration")
    @classmethod
    def _known_qids(cls, values: list[CalibrationValue]) -> list[CalibrationValue]:
        for value in values:
            if qubit_labels(value.qid) is None:
                raise ValueError(f"qid {value.qid!r} of {value.parameter_name} is not Qn or Qn-Qm")
        return values


def load_backend_config(path: Path) -> BackendConfig:
    """Read and check a backend configuration YAML file.

    Raises:
        BackendConfigError: The file cannot be read, is not YAML, or a field is invalid.
        CompilerPassError: A compiler pass does not resolve in OpenSquirrel.
    """
    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise BackendConfigError(source, f"cannot read: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise BackendConfigError(source, f"not valid YAML: {e}") from e
    return parse_backend_config(raw, source)


def parse_backend_config(raw: object, source: str) -> BackendConfig:
    """Check a decoded configuration and its compiler passes.

    Raises:
        BackendConfigError: A field is missing or invalid.
        CompilerPassError: A compiler pass does not resolve in OpenSquirrel.
    """
    if not isinstance(raw, dict):
        raise BackendConfigError(source, f"expected a mapping, found {type(raw).__name__}")
    try:
        config = BackendConfig.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise BackendConfigError(source, f"{where}: {first['msg']}") from e
    check_compiler_config(config.default_compiler_config, source)
    return config


def check_compiler_config(config: CompilerConfig, source: str) -> None:
    """Check that every pass's ``path`` imports from OpenSquirrel and has its ``method``.

    Raises:
        CompilerPassError: Naming the first pass that does not resolve.
    """
    for stage, passes in config.stages().items():
        for index, compiler_pass in enumerate(passes):
            try:
                _resolve(compiler_pass)
            except ImportError as e:
                raise CompilerPassError(
                    source, stage, index, compiler_pass.path, compiler_pass.method, str(e)
                ) from e


def _resolve(compiler_pass: CompilerPass) -> None:
    """Import the pass's class and check its method; ImportError says what is missing."""
    module_name, _, class_name = compiler_pass.path.rpartition(".")
    if module_name.split(".")[0] != "opensquirrel":
        raise ImportError("the path must name a class in the opensquirrel package")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ImportError(f"module {module_name} does not import: {e}") from e
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ImportError(f"{module_name} has no class {class_name}")
    if not callable(getattr(cls, compiler_pass.method, None)):
        raise ImportError(f"class {class_name} has no method {compiler_pass.method}")
