"""Prefect tasks: thin wrappers adding retries, caching, hooks and logging to qops functions."""
