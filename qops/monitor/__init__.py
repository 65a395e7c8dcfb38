"""The 2200 side: asks 2300 for its information, follows its state and serves its metrics.

:mod:`~qops.monitor.client` the REQ client (Lazy Pirate); :mod:`~qops.monitor.monitor` the
monitor and its settings (metrics through :mod:`qops.metrics`);
:mod:`~qops.monitor.snapshots` what it records in MongoDB.
"""
