"""Writing a run's xarray dataset as an HDF5 file and reading it back.

The file is netCDF4-flavoured HDF5 written with the ``h5netcdf`` engine, the way QCoDeS
exports it: complex values natively, a multi-index (scattered setpoints) encoded with
``cf_xarray``'s compression-by-gathering convention so it reopens as the same index.

A run given as an ``xarray.DataTree`` (one dataset per dependent, when its dependents do not
merge into one) is written as netCDF4 groups: the root's attributes at the file's root, each
child dataset in a group of its name, encoded as a single dataset is.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import xarray as xr
from cf_xarray import (  # type: ignore[attr-defined]
    decode_compress_to_multi_index,
    encode_multi_index_as_compress,
)
from pydantic import BaseModel, ConfigDict
from qcodes.dataset.exporters.export_to_xarray import xarray_to_h5netcdf_with_complex_numbers

from qops.errors import QopsError

_CHUNK = 1 << 20


class ExportError(QopsError):
    """A dataset could not be written as HDF5.

    Args:
        path: The file being written.
        reason: What failed.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot write HDF5 file {path}: {reason}")


class FileFacts(BaseModel):
    """Size and checksum of a written file."""

    model_config = ConfigDict(frozen=True)

    size: int
    md5: str


def file_facts(path: Path) -> FileFacts:
    """Return the size in bytes and the md5 hex digest of ``path`` (read in 1 MiB chunks)."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileFacts(size=size, md5=digest.hexdigest())


def write_hdf5(dataset: xr.Dataset | xr.DataTree, path: Path) -> FileFacts:
    """Write ``dataset`` to ``path`` (h5netcdf engine) and return its size and md5.

    A tree is written as groups (see the module docstring).

    Raises:
        ExportError: The dataset cannot be encoded or the file cannot be written.
    """
    if isinstance(dataset, xr.DataTree):
        return _write_groups(dataset, path)
    try:
        xarray_to_h5netcdf_with_complex_numbers(dataset, path)
    except (OSError, ValueError, TypeError) as e:
        raise ExportError(str(path), str(e)) from e
    return file_facts(path)


def _write_groups(tree: xr.DataTree, path: Path) -> FileFacts:
    """Write the tree's root attributes and each child as a group of the same file."""
    try:
        xr.Dataset(attrs=tree.attrs).to_netcdf(path, mode="w", engine="h5netcdf")
        for name, child in tree.children.items():
            group = child.to_dataset()
            if any(isinstance(index, pd.MultiIndex) for index in group.indexes.values()):
                group = encode_multi_index_as_compress(group)  # type: ignore[no-untyped-call]
            group.to_netcdf(path, mode="a", group=name, engine="h5netcdf")
    except (OSError, ValueError, TypeError) as e:
        raise ExportError(str(path), str(e)) from e
    return file_facts(path)


def read_hdf5_groups(path: Path) -> tuple[dict[str, object], dict[str, xr.Dataset]]:
    """Open a file written from a tree: the root's attributes and each group's dataset.

    Each group reopens as the dataset that was written (multi-index decoded).
    """
    with xr.open_datatree(path, engine="h5netcdf") as opened:
        tree = opened.load()
    groups: dict[str, xr.Dataset] = {}
    for name, child in tree.children.items():
        dataset = child.to_dataset()
        if "multi_index" in dataset.variables and "compress" in dataset["multi_index"].attrs:
            dataset = decode_compress_to_multi_index(dataset, "multi_index")  # type: ignore[no-untyped-call]
        groups[str(name)] = dataset
    return {str(key): value for key, value in tree.attrs.items()}, groups


def read_hdf5(path: Path) -> xr.Dataset:
    """Open an HDF5 file written by :func:`write_hdf5` as the dataset that was written."""
    with xr.open_dataset(path, engine="h5netcdf") as opened:
        dataset = opened.load()
    if "multi_index" in dataset.variables and "compress" in dataset["multi_index"].attrs:
        dataset = decode_compress_to_multi_index(dataset, "multi_index")  # type: ignore[no-untyped-call]
    return dataset
