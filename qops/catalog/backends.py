"""The sync backend contract: what the catalog needs of a source, and the backend registry.

A backend is a subclass of :class:`SyncBackend` registered in the ``qops.sync_backends``
entry-point group. The class states its contract in class variables and methods, checked
when the class is created, so a malformed backend fails at import rather than during a
sync. The catalog owns this contract and never imports a backend's code: the sync service
finds the backend of a source with :func:`get_backend` and reads the source only through
:class:`SourceReader` and :class:`SourceRun`.

A backend's read failures are subclasses of
:class:`~qops.catalog.errors.SourceReadError`; the service records them as a failure of
that run and retries it after a back-off.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

from pydantic import BaseModel, ValidationError

from qops.catalog.errors import (
    BackendDefinitionError,
    InvalidSourceConfigError,
    UnknownBackendError,
)
from qops.catalog.models import DatasetMetadata
from qops.catalog.settings import SyncSettings

if TYPE_CHECKING:
    import xarray as xr

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "qops.sync_backends"
STORED = "stored"
"""Validation context key set for configs read back from the registry."""
_REQUIRED = ("identifier", "display_name", "version", "reads_with", "config_model")
_REQUIRED_METHODS = ("change_stamp", "open_reader")


class TrackedRun(Protocol):
    """A run as discovery sees it: its id in the source and its global id."""

    @property
    def run_id(self) -> int:
        """Id of the run in its source; ids only grow (the discovery watermark)."""
        ...

    @property
    def guid(self) -> str:
        """Globally unique id of the run (the dataset's ``alt_uid``)."""
        ...


class SourceRun(Protocol):
    """One run of a source, read once by :meth:`SourceReader.run` (everything but its data)."""

    @property
    def guid(self) -> str:
        """Globally unique id of the run."""
        ...

    @property
    def is_completed(self) -> bool:
        """Whether the run's data can no longer grow."""
        ...

    @property
    def rows(self) -> int:
        """The data marker: a number that grows with the run's data (0 when it has none).

        An unchanged marker means unchanged data, so the file is not rewritten.
        """
        ...

    @property
    def fingerprint(self) -> str:
        """Digest of the run's metadata, as :meth:`SourceReader.run_fingerprints` gives it."""
        ...

    @property
    def metadata(self) -> DatasetMetadata:
        """The run's searchable catalog metadata."""
        ...

    def dataset(self, up_to_row: int) -> xr.Dataset | xr.DataTree:
        """Return the run's data up to the data marker ``up_to_row`` as an xarray dataset.

        A run whose data has no single-dataset layout may be given as a tree (one dataset
        per group); the file then holds one HDF5 group per child.

        Raises:
            SourceReadError: The data cannot be read or laid out.
        """
        ...


class SourceReader(Protocol):
    """An open, read-only view of one source; the sync service uses it as a context manager.

    Every method raises a :class:`~qops.catalog.errors.SourceReadError` subclass when the
    source cannot be read.
    """

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def runs_after(self, watermark: int) -> Sequence[TrackedRun]:
        """Return the runs with an id above ``watermark``, in id order (one query)."""
        ...

    def metadata_fingerprint(self) -> str:
        """Return one digest of every run's completion and metadata (one query).

        Discovery compares runs one by one only when it changed.
        """
        ...

    def run_fingerprints(self) -> Mapping[int, str]:
        """Return ``run_id -> digest`` of every run's completion and metadata."""
        ...

    def data_markers(self, run_ids: Sequence[int]) -> Mapping[int, int]:
        """Return ``run_id -> data marker`` of the given runs that exist (cheap: no data read).

        Discovery calls it for abandoned runs only, to notice a writer that resumed.
        """
        ...

    def run(self, run_id: int) -> SourceRun:
        """Return run ``run_id`` (its data is read later, through :meth:`SourceRun.dataset`).

        Raises:
            SourceReadError: No such run, or its stored content cannot be decoded.
        """
        ...


class SyncBackend:
    """Base of every sync backend.

    Subclasses set:
        identifier: The name sources refer to (``qcodes``).
        display_name: A human name.
        version: The backend's version.
        reads_with: What it reads with, e.g. ``QCoDeS 0.58.0``.
        config_model: The pydantic model of a source's config.

    and implement :meth:`change_stamp` and :meth:`open_reader`.
    """

    identifier: ClassVar[str]
    display_name: ClassVar[str]
    version: ClassVar[str]
    reads_with: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [name for name in _REQUIRED if not hasattr(cls, name)]
        missing += [
            name
            for name in _REQUIRED_METHODS
            if getattr(cls, name).__func__ is getattr(SyncBackend, name).__func__
        ]
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

    @classmethod
    def change_stamp(cls, config: BaseModel) -> list[int]:
        """Return a cheap stamp of the source that changes whenever the source does.

        Called on every discovery before anything is opened: an unchanged stamp means
        nothing new and nothing changed, so discovery stops there. It must not open the
        source (e.g. ``stat`` the files only).

        Args:
            config: The source's config, validated as stored (``stored=True``).
        """
        raise NotImplementedError

    @classmethod
    def location(cls, config: BaseModel) -> str | None:
        """Return what the source reads (e.g. a resolved file path), or ``None`` if unknown.

        Two sources with the same location would overwrite each other's datasets, so
        :meth:`~qops.catalog.sources.SyncSources.create` refuses the second one. The
        default (``None``) opts out of that check.

        Args:
            config: The source's config, validated as stored (``stored=True``).
        """
        return None

    @classmethod
    def open_reader(cls, config: BaseModel, settings: SyncSettings) -> SourceReader:
        """Return a read-only reader of the source, opened when entered.

        Args:
            config: The source's config, validated as stored (``stored=True``).
            settings: The sync settings (e.g. how long a read waits for a writer's lock).
        """
        raise NotImplementedError


def validation_problems(error: ValidationError) -> list[str]:
    """Return one ``field: message`` line per violation in ``error``.

    A validator's own ``ValueError`` is given as its text, without pydantic's
    ``Value error, `` prefix.
    """
    problems = []
    for err in error.errors():
        message = err["msg"]
        if err["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        problems.append(f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {message}")
    return problems


def installed_backends() -> dict[str, type[SyncBackend]]:
    """Return the installed backends by identifier (entry-point group ``qops.sync_backends``)."""
    return dict(_entry_point_backends())


@functools.cache
def _entry_point_backends() -> dict[str, type[SyncBackend]]:
    # Scanning the installed distributions' entry points takes tens of milliseconds and
    # every discovery and run sync looks its backend up: the scan is done once per process.
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
