"""Where exported files go: a :class:`FileStore` puts a local file under a relative path.

The Prefect layer adapts filesystem blocks (``LocalFileSystem``, ``RemoteFileSystem``) to
this protocol; :class:`LocalDirStore` is the plain-directory implementation.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol

from qops.export.hdf5 import ExportError


class FileStore(Protocol):
    """Puts finished files into their final location."""

    def put(self, local: Path, relative: str) -> str:
        """Move or copy ``local`` to ``relative`` and return the stored file's location."""
        ...


class LocalDirStore:
    """A :class:`FileStore` on a local directory.

    Args:
        root: Directory the relative paths are resolved under (created on demand).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def put(self, local: Path, relative: str) -> str:
        target = (self.root / relative).resolve()
        if not target.is_relative_to(self.root):
            raise ExportError(str(target), f"path escapes the store root {self.root}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".partial")
            shutil.copyfile(local, tmp)
            os.replace(tmp, target)
        except OSError as e:
            raise ExportError(str(target), e.strerror or str(e)) from e
        return str(target)
