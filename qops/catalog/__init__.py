"""The dataset catalog: dataset records, per-run sync state, sync sources, and the sync service."""
