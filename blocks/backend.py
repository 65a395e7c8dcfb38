"""The 2300 meta backend block."""

from __future__ import annotations

from typing import Any, Literal

from prefect.blocks.core import Block
from pydantic import Field

from qops.backend.config import BackendConfig, parse_backend_config


class MetaBackend(Block):
    """What a 2300 backend is and reports; mirrors :class:`qops.backend.config.BackendConfig`.

    ``to_settings()`` checks the compiler passes against OpenSquirrel like the YAML file.
    """

    _block_type_name = "qops Meta Backend"
    _block_type_slug = "qops-meta-backend"
    _description = "2300 meta server configuration: system name, qubits, gates, compiler passes."

    name: str = Field(min_length=1, description="Name of the system, reported by get_static.")
    chip_id: str | None = Field(default=None, description="Chip id; default: the name.")
    project_id: str | None = Field(
        default=None, description="Provenance project of the chip; default: QOPS_PROJECT_ID."
    )
    nqubits: int = Field(ge=0, description="Number of qubits.")
    topology: list[tuple[int, int]] = Field(default_factory=list, description="Qubit edges.")
    pgs: list[str] = Field(
        default_factory=list, description="Primitive gates, by name (X, mX90, measure)."
    )
    default_compiler_config: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict, description="Passes per stage: {path, method, arguments}."
    )
    supports_raw_data: bool = Field(default=False, description="Per-shot raw data support.")
    extra_metrics: dict[str, float] = Field(
        default_factory=dict, description="Plain numbers added to every get_dynamic answer."
    )
    calibration_source: Literal["provenance", "config"] = Field(
        default="provenance",
        description="Where get_dynamic's calibration values come from.",
    )
    heartbeat_s: float = Field(default=1.0, gt=0, le=60, description="publish_state period.")
    execution: dict[str, Any] = Field(
        default_factory=dict,
        description="Limits of running circuits: max_shots, session_timeout_s, lease_s, seed.",
    )

    def to_settings(self) -> BackendConfig:
        """Return the configuration this block describes, checked.

        Raises:
            BackendConfigError: A field is invalid or a compiler pass does not resolve.
        """
        return parse_backend_config(
            {
                "name": self.name,
                "chip_id": self.chip_id,
                "project_id": self.project_id,
                "nqubits": self.nqubits,
                "topology": self.topology,
                "pgs": self.pgs,
                "default_compiler_config": self.default_compiler_config,
                "supports_raw_data": self.supports_raw_data,
                "extra_metrics": self.extra_metrics,
                "calibration_source": self.calibration_source,
                "heartbeat_s": self.heartbeat_s,
                "execution": self.execution,
            },
            f"block {self._block_document_name or self.name}",
        )
