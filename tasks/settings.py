"""Resolving settings inside a flow or task run: a block name, else the environment."""

from __future__ import annotations

from blocks.mongodb import MongoDBConnection
from qops.config import MongoSettings


def mongo_settings(block_name: str | None = None) -> MongoSettings:
    """Return MongoDB settings from the named block, or from ``QOPS_*`` variables if ``None``."""
    if block_name:
        block = MongoDBConnection.load(block_name)
        assert isinstance(block, MongoDBConnection)
        return block.to_settings()
    return MongoSettings()
