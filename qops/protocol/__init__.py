"""The compute-runtime meta protocol (version 3) between 2200 and 2300 over ZeroMQ.

- :mod:`~qops.protocol.messages`: typed messages; :mod:`~qops.protocol.schemas`: the JSON
  Schemas every message is checked against, and the wire codec;
- :mod:`~qops.protocol.server`: the 2300 meta server; :mod:`~qops.protocol.config` its
  configuration; :mod:`~qops.protocol.calibration` where its metrics come from;
  :mod:`~qops.protocol.state` the shared state marks (OFFLINE, CALIBRATING leases);
- :mod:`~qops.protocol.client` the 2200 REQ client; :mod:`~qops.protocol.monitor` the 2200
  monitor; :mod:`~qops.protocol.snapshots` what it records in MongoDB.
"""
