"""QCoDeS capability: read-only reader of lab databases, run metadata, ``QHMetaData``."""
