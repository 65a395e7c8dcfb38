"""Writing a run's xarray dataset as an HDF5 file and reading it back.

The file is netCDF4-flavoured HDF5 written with the ``h5netcdf`` engine, the way QCoDeS
exports it: complex values natively, a multi-index (scattered setpoints) encoded with
``cf_xarray``'s compression-by-gathering convention so it reopens as the same index.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import xarray as xr
from cf_xarray import decode_compress_to_multi_index  # type: ignore[attr-defined]
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


def write_hdf5(dataset: xr.Dataset, path: Path) -> FileFacts:
    """Write ``dataset`` to ``path`` (h5netcdf engine) and return its size and md5.

    Raises:
        ExportError: The dataset cannot be encoded or the file cannot be written.
    """
    try:
        xarray_to_h5netcdf_with_complex_numbers(dataset, path)
    except (OSError, ValueError, TypeError) as e:
        raise ExportError(str(path), str(e)) from e
    return file_facts(path)


def read_hdf5(path: Path) -> xr.Dataset:
    """Open an HDF5 file written by :func:`write_hdf5` as the dataset that was written."""
    with xr.open_dataset(path, engine="h5netcdf") as opened:
        dataset = opened.load()
    if "multi_index" in dataset.variables and "compress" in dataset["multi_index"].attrs:
        dataset = decode_compress_to_multi_index(dataset, "multi_index")  # type: ignore[no-untyped-call]
    return dataset
