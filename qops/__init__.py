"""qops: operations pipelines of a quantum-computing lab.

The domain library: QCoDeS reading and metadata, HDF5 export, the dataset catalog, the
compute-runtime meta protocol, metric flattening, calibration provenance and settings.
It never imports Prefect; `qops.cli` is the composition root that starts flows and servers.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
