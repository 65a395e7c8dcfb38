"""Calibration of a chip: everything about running one that is not Prefect.

- :mod:`qops.calibration.graph`: the calibration steps as data (inputs, outputs, order).
- :mod:`qops.calibration.plan`: the chip, the targets, and what a failed step skips.
- :mod:`qops.calibration.measurement`: one QCoDeS run per measurement, tagged for the sync.
- :mod:`qops.calibration.steps`: the seven steps (measure, fit, values) and their sweeps.
- :mod:`qops.calibration.instruments`: the process's simulated chips and ``qh_meta``.
- :mod:`qops.calibration.recording`: recording a calibration run's provenance.
- :mod:`qops.calibration.session`: the chip's exclusive calibration lease, versions before
  and after.
- :mod:`qops.calibration.report`: the run's report, its changes, and their rendering.

The Prefect tasks and the ``calibrate`` flow that use it live in ``tasks/calibration.py``,
``tasks/provenance.py`` and ``flows/calibrate.py``.
"""
