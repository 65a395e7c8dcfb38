"""The 2300 meta server: answers get_static/get_dynamic and publishes the chip's state.

:mod:`~qops.backend.server` the server; :mod:`~qops.backend.config` what the backend is and
reports; :mod:`~qops.backend.sources` where get_dynamic's calibration values come from
(:mod:`~qops.backend.provenance_source` reads them from the provenance store);
:mod:`~qops.backend.state` the state marks in MongoDB (OFFLINE, CALIBRATING leases).
"""
