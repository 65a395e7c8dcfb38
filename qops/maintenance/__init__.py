"""Keeping a chip calibrated: health of its parameters over provenance, and what to recalibrate.

:mod:`qops.maintenance.policy` holds the per-parameter rules (direction, staleness limit,
spec bounds, trend length) read from one YAML file; :mod:`qops.maintenance.health` judges a
chip's current versions and their chains against them and recommends calibration steps.
"""
