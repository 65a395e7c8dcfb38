"""Fixtures of the maintenance unit tests (see tests/chip_support.py)."""

from tests.chip_support import chip, context, qh_meta

__all__ = ["chip", "context", "qh_meta"]
