"""The wire format of the compute-runtime meta protocol (version 3) between 2200 and 2300.

Only what both sides share: :mod:`~qops.protocol.messages` (typed messages),
:mod:`~qops.protocol.schemas` (the JSON Schemas every message is checked against, and the
byte codec) and :mod:`~qops.protocol.errors` (a message that breaks the protocol). The 2300 side is
:mod:`qops.backend`, the 2200 side :mod:`qops.monitor`.
"""
