"""Managing sync sources: ``SyncSources.create/list/get/remove``.

The registry lives in MongoDB (``sync_sources``) so every worker sees the same sources. A
:class:`SourceMirror` (the Prefect layer provides one that saves a ``QCoDeSSyncSource``
block) is kept in step when given.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from pydantic import BaseModel, JsonValue, ValidationError

from qops.catalog.backends import SyncBackend, get_backend, validation_problems
from qops.catalog.errors import (
    InvalidSourceConfigError,
    SourceExistsError,
    SourceLocationTakenError,
    SourceNotFoundError,
    UnknownBackendError,
)
from qops.catalog.models import SyncSource
from qops.catalog.repository import SyncItemRepository, SyncSourceRepository
from qops.config import MongoSettings
from qops.mongo import database
from qops.timeutil import utc_now

logger = logging.getLogger(__name__)

DEFAULT_SCOPE = "default"


class SourceMirror(Protocol):
    """Another store that keeps a copy of every source (e.g. Prefect blocks)."""

    def save(self, source: SyncSource) -> None:
        """Store or replace the copy of ``source``."""
        ...

    def delete(self, name: str) -> None:
        """Delete the copy of source ``name`` if there is one."""
        ...


def _check_location_free(
    repository: SyncSourceRepository, name: str, backend: type[SyncBackend], config: BaseModel
) -> None:
    """Raise if another source of ``backend`` reads what ``config`` reads."""
    location = backend.location(config)
    if location is None:
        return
    for other in repository.list():
        if other.name == name or other.backend != backend.identifier:
            continue
        try:
            other_config = backend.validate_config(other.name, other.config, stored=True)
        except (InvalidSourceConfigError, UnknownBackendError):
            continue  # a source that no longer validates reads nothing
        if backend.location(other_config) == location:
            raise SourceLocationTakenError(name, other.name, location)


class SyncSources:
    """Create, list, get and remove sync sources."""

    @staticmethod
    def create(
        name: str,
        backend_identifier: str,
        config_data: Mapping[str, JsonValue],
        default_scope: str = DEFAULT_SCOPE,
        *,
        settings: MongoSettings | None = None,
        mirror: SourceMirror | None = None,
    ) -> SyncSource:
        """Register a source; creating the same source again is a no-op.

        Args:
            name: Unique name (letters, digits, ``_.-``).
            backend_identifier: An installed backend, e.g. ``qcodes``.
            config_data: The backend's config, e.g. ``{"database_path": ..., "set_up": ...}``.
            default_scope: Scope of the datasets it produces.
            settings: MongoDB settings (default: from ``QOPS_*`` variables).
            mirror: Also store the source there.

        Raises:
            InvalidSourceConfigError: The name or config does not validate (each field named).
            UnknownBackendError: No such backend is installed.
            SourceExistsError: The name is taken by a different source.
            SourceLocationTakenError: Another source already reads the same location (the
                same database file, however its path is spelled).
        """
        backend = get_backend(backend_identifier)
        config = backend.validate_config(name, config_data)
        try:
            source = SyncSource(
                name=name,
                backend=backend.identifier,
                config=config.model_dump(mode="json"),
                default_scope=default_scope,
                created_at=utc_now(),
            )
        except ValidationError as e:
            raise InvalidSourceConfigError(name, validation_problems(e)) from e
        repository = SyncSourceRepository(database(settings or MongoSettings()))
        existing = repository.get(name)
        if existing is not None:
            same = (existing.backend, existing.config, existing.default_scope) == (
                source.backend,
                source.config,
                source.default_scope,
            )
            if not same:
                raise SourceExistsError(name)
            source = existing
        else:
            _check_location_free(repository, name, backend, config)
            repository.save(source)
        if mirror is not None:
            mirror.save(source)
        logger.info("sync source %s (%s) registered", name, source.backend)
        return source

    @staticmethod
    def list(*, settings: MongoSettings | None = None) -> list[SyncSource]:
        """Return every registered source, by name."""
        return SyncSourceRepository(database(settings or MongoSettings())).list()

    @staticmethod
    def get(name: str, *, settings: MongoSettings | None = None) -> SyncSource:
        """Return source ``name``.

        Raises:
            SourceNotFoundError: No such source.
        """
        source = SyncSourceRepository(database(settings or MongoSettings())).get(name)
        if source is None:
            raise SourceNotFoundError(name)
        return source

    @staticmethod
    def remove(
        name: str, *, settings: MongoSettings | None = None, mirror: SourceMirror | None = None
    ) -> None:
        """Unregister source ``name`` and forget its sync state; synced datasets stay.

        Raises:
            SourceNotFoundError: No such source.
        """
        db = database(settings or MongoSettings())
        if not SyncSourceRepository(db).delete(name):
            raise SourceNotFoundError(name)
        SyncItemRepository(db).delete_source(name)
        if mirror is not None:
            mirror.delete(name)
