"""The meta fixtures (a real 2300 server on loopback) for the 2200 client and monitor."""

from tests.meta_support import start_server, zmq_context

__all__ = ["start_server", "zmq_context"]
