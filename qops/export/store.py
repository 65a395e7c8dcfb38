"""Where exported files go: a :class:`FileStore` puts a local file under a relative path.

The Prefect layer adapts filesystem blocks (``LocalFileSystem``, ``RemoteFileSystem``) to
this protocol; :class:`LocalDirStore` is the plain-directory implementation.

A dataset's file keeps one name while it is rewritten (a live run's file grows), so a
store replaces a file in place: a reader sees the old file or the new one, never a part.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol

from qops.export.hdf5 import ExportError


class FileStore(Protocol):
    """Puts finished files into their final location and deletes superseded ones."""

    def put(self, local: Path, relative: str) -> str:
        """Copy ``local`` to ``relative``, replacing a file there, and return its location.

        A reader of ``relative`` sees the previous file or the new one, never a part.

        Raises:
            ExportError: The file cannot be stored.
        """
        ...

    def delete(self, relative: str) -> None:
        """Delete the file at ``relative``; a missing file is not an error.

        Raises:
            ExportError: The file exists but cannot be deleted.
        """
        ...


class LocalDirStore:
    """A :class:`FileStore` on a local directory.

    Files are copied to a temporary name in the target's directory and renamed over the
    target (``os.replace``, atomic on POSIX and Windows), so a reader never sees a
    half-written file.

    Args:
        root: Directory the relative paths are resolved under (created on demand).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def _target(self, relative: str) -> Path:
        target = (self.root / relative).resolve()
        if not target.is_relative_to(self.root):
            raise ExportError(str(target), f"path escapes the store root {self.root}")
        return target

    def put(self, local: Path, relative: str) -> str:
        target = self._target(relative)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".partial")
            shutil.copyfile(local, tmp)
            os.replace(tmp, target)
        except OSError as e:
            raise ExportError(str(target), e.strerror or str(e)) from e
        return str(target)

    def delete(self, relative: str) -> None:
        target = self._target(relative)
        try:
            target.unlink(missing_ok=True)
        except OSError as e:
            raise ExportError(str(target), f"cannot delete: {e.strerror or e}") from e
