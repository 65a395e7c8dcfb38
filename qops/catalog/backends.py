"""Sync backends: what kind of source a backend reads, discovered through entry points.

A backend is a subclass of :class:`SyncBackend` registered in the ``qops.sync_backends``
entry-point group. The class states its contract in class variables, checked when the
class is created, so a malformed backend fails at import rather than during a sync.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from qops.catalog.errors import (
    BackendDefinitionError,
    InvalidSourceConfigError,
    UnknownBackendError,
)

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "qops.sync_backends"
STORED = "stored"
"""Validation context key set for configs read back from the registry."""
_REQUIRED = ("identifier", "display_name", "version", "reads_with", "config_model")


class SyncBackend:
    """Base of every sync backend.

    Subclasses set:
        identifier: The name sources refer to (``qcodes``).
        display_name: A human name.
        version: The backend's version.
        reads_with: What it reads with, e.g. ``QCoDeS 0.58.0``.
        config_model: The pydantic model of a source's config.
    """

    identifier: ClassVar[str]
    display_name: ClassVar[str]
    version: ClassVar[str]
    reads_with: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [name for name in _REQUIRED if not hasattr(cls, name)]
        if missing:
            raise BackendDefinitionError(cls.__qualname__, missing)

    @classmethod
    def validate_config(
        cls, source: str, data: Mapping[str, object], *, stored: bool = False
    ) -> BaseModel:
        """Return ``data`` validated as this backend's config.

        Args:
            source: The source's name, for the error message.
            data: The config.
            stored: The config comes from the registry: skip checks that touch the
                source itself (each read checks it again, and fails that run alone).

        Raises:
            InvalidSourceConfigError: One message per violation, each naming the field.
        """
        try:
            return cls.config_model.model_validate(dict(data), context={STORED: stored})
        except ValidationError as e:
            raise InvalidSourceConfigError(source, validation_problems(e)) from e


def validation_problems(error: ValidationError) -> list[str]:
    """Return one ``field: message`` line per violation in ``error``."""
    return [
        f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
        for err in error.errors()
    ]


def installed_backends() -> dict[str, type[SyncBackend]]:
    """Return the installed backends by identifier (entry-point group ``qops.sync_backends``)."""
    found: dict[str, type[SyncBackend]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry.load()
        if isinstance(loaded, type) and issubclass(loaded, SyncBackend):
            found[loaded.identifier] = loaded
        else:
            logger.warning("entry point %s does not name a SyncBackend subclass", entry.value)
    return found


def get_backend(identifier: str) -> type[SyncBackend]:
    """Return the installed backend ``identifier``.

    Raises:
        UnknownBackendError: None is installed under that identifier.
    """
    backends = installed_backends()
    if identifier not in backends:
        raise UnknownBackendError(identifier, sorted(backends))
    return backends[identifier]
