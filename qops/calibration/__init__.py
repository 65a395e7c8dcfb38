"""Calibration runs of a chip: which steps run on which qubits and pairs, and their report.

Pure planning and reporting; the Prefect tasks and the ``calibrate`` flow that use it live in
``tasks/calibration.py`` and ``flows/calibrate.py``.
"""
