"""A small client of 2300's job commands, as a 2200 sends them: for the demo and the bench.

One REQ socket; each request waits at most ``timeout_s`` for its reply. A missed reply
leaves a REQ socket unable to send, so the socket is then closed and the next request
opens a fresh one (the Lazy Pirate rule), and the request is not repeated: ``execute`` is
not idempotent.
"""

from __future__ import annotations

import zmq

from qops.errors import QopsError
from qops.protocol.errors import ProtocolError
from qops.protocol.messages import Command, JsonObject
from qops.protocol.schemas import ProtocolSchemas, decode, encode, protocol_schemas


class JobFailedError(QopsError):
    """2300 answered a job command with a failure reply, or not in time.

    Args:
        command: The command sent.
        reason: The reply's ``error_msg``, or why no reply came.
    """

    def __init__(self, command: Command, reason: str) -> None:
        self.command = command
        self.reason = reason
        super().__init__(f"{command} failed: {reason}")


class JobClient:
    """Sends initialize, execute and terminate to a 2300 and checks the replies.

    Args:
        address: The 2300 REP address, e.g. ``tcp://127.0.0.1:4203``.
        timeout_s: Seconds to wait for each reply.
        context: ZeroMQ context; default a private one, terminated on close.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = 10.0,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
    ) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._own_context = context is None
        self._context = context if context is not None else zmq.Context()
        self._schemas: ProtocolSchemas = protocol_schemas()
        self._socket: zmq.Socket[bytes] | None = None

    def __enter__(self) -> JobClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket (and the context if this client created it)."""
        self._discard()
        if self._own_context:
            self._context.term()

    def initialize(self, session_id: str) -> None:
        """Lock 2300 for execution in session ``session_id``.

        Raises:
            JobFailedError: 2300 refused, or did not answer in time.
        """
        self._request(Command.INITIALIZE, session_id, None)

    def execute(
        self,
        session_id: str,
        job_id: int,
        circuit: str,
        shots: int,
        include_raw_data: bool = False,
    ) -> JsonObject:
        """Run ``circuit`` and return the reply's payload (``job_id``, ``results``, ...).

        Raises:
            JobFailedError: 2300 refused, or did not answer in time.
        """
        payload: JsonObject = {
            "job_id": job_id,
            "circuit": circuit,
            "number_of_shots": shots,
            "include_raw_data": include_raw_data,
        }
        reply = self._request(Command.EXECUTE, session_id, payload)
        result = reply["payload"]
        assert isinstance(result, dict)
        return result

    def terminate(self, session_id: str) -> None:
        """End session ``session_id``.

        Raises:
            JobFailedError: 2300 refused, or did not answer in time.
        """
        self._request(Command.TERMINATE, session_id, None)

    def _request(self, command: Command, session_id: str, payload: JsonObject | None) -> JsonObject:
        message: JsonObject = {"command": command.value, "session_id": session_id}
        if payload is not None:
            message["payload"] = payload
        self._schemas.check(f"{command}/request", message, f"outgoing {command} request")
        sock = self._connect()
        sock.send(encode(message))
        try:
            frame = sock.recv()
        except zmq.Again:
            self._discard()
            raise JobFailedError(command, f"no reply within {self.timeout_s:g} s") from None
        reply = decode(frame, f"{command} reply")
        if reply.get("session_id") != session_id:
            raise ProtocolError(
                f"{command} reply", f"session_id {reply.get('session_id')!r} is not {session_id}"
            )
        if reply.get("status") == "failure":
            self._schemas.check(f"{command}/reply_failure", reply, f"{command} reply")
            failure = reply["payload"]
            assert isinstance(failure, dict)
            raise JobFailedError(command, str(failure["error_msg"]))
        self._schemas.check(f"{command}/reply_success", reply, f"{command} reply")
        return reply

    def _connect(self) -> zmq.Socket[bytes]:
        if self._socket is None:
            sock = self._context.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVTIMEO, max(1, int(self.timeout_s * 1000)))
            sock.connect(self.address)
            self._socket = sock
        return self._socket

    def _discard(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
