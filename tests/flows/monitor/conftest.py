"""The meta fixtures (a real 2300 server on loopback) for the monitor flow tests."""

from tests.meta_support import start_server, zmq_context

__all__ = ["start_server", "zmq_context"]
