"""Sync backends: entry-point discovery and the class contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from qops.catalog.backends import SyncBackend, get_backend, installed_backends
from qops.catalog.errors import (
    BackendDefinitionError,
    InvalidSourceConfigError,
    UnknownBackendError,
)
from qops.qcodes.backend import QCoDeSBackend


def test_installed_backends_entry_point_finds_qcodes() -> None:
    assert installed_backends()["qcodes"] is QCoDeSBackend


def test_get_backend_unknown_names_available_ones() -> None:
    with pytest.raises(UnknownBackendError, match="available: qcodes"):
        get_backend("labber")


def test_sync_backend_subclass_missing_contract_fails_at_class_creation() -> None:
    with pytest.raises(BackendDefinitionError, match="reads_with, config_model"):

        class Incomplete(SyncBackend):
            identifier = "x"
            display_name = "X"
            version = "1"


def test_sync_backend_subclass_without_reader_fails_at_class_creation() -> None:
    with pytest.raises(BackendDefinitionError, match="does not declare change_stamp, open_reader"):

        class NoReader(SyncBackend):
            identifier = "x"
            display_name = "X"
            version = "1"
            reads_with = "nothing"
            config_model = BaseModel


def test_validate_config_validator_error_has_no_pydantic_prefix(tmp_path: Path) -> None:
    with pytest.raises(InvalidSourceConfigError) as error:
        QCoDeSBackend.validate_config(
            "lab", {"database_path": str(tmp_path), "set_up": " "}, stored=False
        )
    assert error.value.problems == [
        "database_path: is a directory, not a database file",
        "set_up: must not be blank",
    ]
    assert "Value error" not in str(error.value)
