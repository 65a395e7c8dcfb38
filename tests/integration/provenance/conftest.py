"""Fixtures for provenance tests on the embedded MongoDB: repository and service."""

from __future__ import annotations

import pytest
from pymongo.database import Database

from qops.mongo import Document
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from tests.integration.provenance.records import PROJECT


@pytest.fixture
def repository(mongo_db: Database[Document]) -> MongoProvenanceRepository:
    repo = MongoProvenanceRepository(mongo_db)
    repo.ensure_indexes()
    return repo


@pytest.fixture
def service(repository: MongoProvenanceRepository) -> ProvenanceService:
    return ProvenanceService(repository, PROJECT)
