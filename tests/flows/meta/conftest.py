"""The meta integration fixtures (a real 2300 server on loopback) for flow tests too."""

from tests.integration.meta.conftest import start_server, zmq_context

__all__ = ["start_server", "zmq_context"]
