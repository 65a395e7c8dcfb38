"""The ``QHMetaData`` instrument, importable as ``qops.qcodes_metadata.QHMetaData``.

This is the path to use in a Station YAML file (``type: qops.qcodes_metadata.QHMetaData``).
"""

from qops.qcodes.instrument import QHMetaData

__all__ = ["QHMetaData"]
