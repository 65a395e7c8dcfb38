"""The 2200 side of request/reply: a REQ client that never hangs (the Lazy Pirate pattern).

Each attempt sends the request and polls for the reply for ``timeout_s``. On a timeout, or
a reply that belongs to another session, the socket is closed and a fresh one connected
(a REQ socket that missed its reply cannot send again), up to ``retries`` attempts in all.
"""

from __future__ import annotations

import logging

import zmq
from pydantic import ValidationError

from qops.monitor.errors import BackendFailureError, BackendUnreachableError
from qops.protocol.errors import ProtocolError
from qops.protocol.messages import Command, JsonObject, StaticInfo, new_session_id
from qops.protocol.schemas import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ProtocolSchemas,
    decode,
    encode,
    protocol_schemas,
)

logger = logging.getLogger(__name__)


class MetaClient:
    """Sends get_static/get_dynamic to 2300 and returns checked payloads.

    Args:
        address: The 2300 REP address, e.g. ``tcp://hardware:4203``.
        timeout_s: Seconds to wait for each attempt's reply.
        retries: Attempts in all before giving up.
        max_message_bytes: Replies longer than this are refused.
        context: ZeroMQ context; default a private one, terminated on close.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = 2.0,
        retries: int = 3,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
    ) -> None:
        if retries < 1:
            raise ValueError("retries must be at least 1")
        self.address = address
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_message_bytes = max_message_bytes
        self._own_context = context is None
        self._context = context if context is not None else zmq.Context()
        self._schemas: ProtocolSchemas = protocol_schemas()
        self._socket: zmq.Socket[bytes] | None = None

    def _connect(self) -> zmq.Socket[bytes]:
        if self._socket is None:
            sock = self._context.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, 4 * self.max_message_bytes)
            # A receive timeout rather than a poll per request: cheaper on the hot path.
            sock.setsockopt(zmq.RCVTIMEO, max(1, int(self.timeout_s * 1000)))
            sock.connect(self.address)
            self._socket = sock
        return self._socket

    def _discard_socket(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def __enter__(self) -> MetaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket (and the context if this client created it)."""
        self._discard_socket()
        if self._own_context:
            self._context.term()

    def get_static(self) -> StaticInfo:
        """Return 2300's static information.

        Raises:
            BackendUnreachableError: No usable reply after every attempt.
            BackendFailureError: 2300 answered with a failure reply.
            ProtocolError: The answer matches the schema but not :class:`StaticInfo`.
        """
        payload = self.request(Command.GET_STATIC)
        try:
            return StaticInfo.model_validate(payload)
        except ValidationError as e:
            first = e.errors()[0]
            where = "/".join(str(part) for part in first["loc"]) or "(top level)"
            raise ProtocolError("get_static reply", f"payload/{where}: {first['msg']}") from e

    def get_dynamic(self) -> JsonObject:
        """Return 2300's current metrics (the get_dynamic payload, schema-checked).

        Raises:
            BackendUnreachableError: No usable reply after every attempt.
            BackendFailureError: 2300 answered with a failure reply.
        """
        return self.request(Command.GET_DYNAMIC)

    def request(self, command: Command) -> JsonObject:
        """Send ``command`` and return the checked payload of its success reply.

        Raises:
            BackendUnreachableError: No usable reply after every attempt.
            BackendFailureError: 2300 answered with a failure reply.
        """
        detail = "no attempt made"
        for attempt in range(1, self.retries + 1):
            session_id = new_session_id()
            wire: JsonObject = {"command": command.value, "session_id": session_id}
            self._schemas.check(f"{command}/request", wire, f"outgoing {command} request")
            sock = self._connect()
            sock.send(encode(wire))
            try:
                frames = sock.recv_multipart()  # waits at most RCVTIMEO = timeout_s
            except zmq.Again:
                detail = f"no reply within {self.timeout_s:g} s"
                self._log_attempt(command, attempt, detail)
                self._discard_socket()
                continue
            try:
                return self._payload_of(command, session_id, frames)
            except ProtocolError as e:
                detail = str(e)
                self._log_attempt(command, attempt, detail)
                # The reply was consumed, but a fresh socket keeps any late reply of a
                # confused peer from being taken for the next request's.
                self._discard_socket()
        raise BackendUnreachableError(self.address, command, self.retries, self.timeout_s, detail)

    def _log_attempt(self, command: Command, attempt: int, detail: str) -> None:
        logger.warning(
            "%s attempt %d/%d to %s: %s", command, attempt, self.retries, self.address, detail
        )

    def _payload_of(self, command: Command, session_id: str, frames: list[bytes]) -> JsonObject:
        what = f"{command} reply"
        if len(frames) != 1:
            raise ProtocolError(what, f"expected one frame, received {len(frames)}")
        reply = decode(frames[0], what, self.max_message_bytes)
        if reply.get("session_id") != session_id:
            raise ProtocolError(
                what, f"session_id {reply.get('session_id')!r} is not the request's {session_id}"
            )
        if reply.get("status") == "failure":
            self._schemas.check(f"{command}/reply_failure", reply, what)
            payload = reply["payload"]
            assert isinstance(payload, dict)
            raise BackendFailureError(self.address, command, str(payload["error_msg"]))
        self._schemas.check(f"{command}/reply_success", reply, what)
        payload = reply["payload"]
        assert isinstance(payload, dict)
        return payload
