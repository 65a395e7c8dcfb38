"""Prefect blocks: the configuration deployments and the Prefect UI need.

Each block mirrors a ``qops.config`` settings model and converts with ``to_settings()``.
"""

from blocks.backend import MetaBackend
from blocks.console import QopsConsole
from blocks.mongodb import MongoDBConnection

__all__ = ["MetaBackend", "MongoDBConnection", "QopsConsole"]
