"""Fixtures of the simulated-chip tests (see tests/chip_support.py)."""

from tests.chip_support import chip

__all__ = ["chip"]
