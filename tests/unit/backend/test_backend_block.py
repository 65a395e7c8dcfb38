"""The qops-meta-backend block converts to a checked backend configuration."""

from __future__ import annotations

import pytest

from blocks.backend import MetaBackend
from qops.backend.errors import CompilerPassError

MCKAY = "opensquirrel.passes.decomposer.mckay_decomposer.McKayDecomposer"


def test_meta_backend_block_to_settings_gives_config() -> None:
    block = MetaBackend(
        name="spin-2",
        nqubits=2,
        topology=[(0, 1)],
        pgs=["X", "CNOT"],
        default_compiler_config={"decomposition": [{"path": MCKAY, "method": "decompose"}]},
        extra_metrics={"fridge_temperature_in_mk": 8.4},
    )
    config = block.to_settings()
    assert config.chip == "spin-2"
    assert config.default_compiler_config.decomposition[0].path == MCKAY
    assert config.extra_metrics == {"fridge_temperature_in_mk": 8.4}


def test_meta_backend_block_bad_pass_is_refused_naming_it() -> None:
    block = MetaBackend(
        name="spin-2",
        nqubits=2,
        default_compiler_config={"mapping": [{"path": MCKAY, "method": "map"}]},
    )
    with pytest.raises(CompilerPassError, match=r"mapping\[0\] .*McKayDecomposer.map"):
        block.to_settings()
