"""Fixtures for maintenance tests on the embedded MongoDB."""

from __future__ import annotations

import pytest
from pymongo.database import Database

from qops.mongo import Document
from qops.provenance.repository import MongoProvenanceRepository


@pytest.fixture
def repository(mongo_db: Database[Document]) -> MongoProvenanceRepository:
    repo = MongoProvenanceRepository(mongo_db)
    repo.ensure_indexes()
    return repo
