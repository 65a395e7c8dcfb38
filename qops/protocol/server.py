"""The 2300 side: answers get_static/get_dynamic on REP and publishes its state on PUB.

One thread owns both sockets (ZeroMQ sockets are not thread-safe). Every request gets
exactly one reply, a failure reply when the request is bad or answering it fails, so the
REP socket can never be left waiting for a send. Each loop turn waits at most
:data:`TICK_S`, so :meth:`MetaServer.stop` (e.g. from a SIGTERM handler) takes effect
within that time.
"""

from __future__ import annotations

import logging
import threading
import time

import zmq

from qops.errors import ConfigurationError
from qops.protocol.calibration import CalibrationSource, dynamic_payload
from qops.protocol.config import BackendConfig
from qops.protocol.errors import ProtocolError, StateStoreError
from qops.protocol.messages import (
    PROTOCOL_VERSION,
    BackendState,
    Command,
    FailureReply,
    JsonObject,
    StateMessage,
    StaticInfo,
    new_session_id,
)
from qops.protocol.schemas import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ProtocolSchemas,
    decode,
    encode,
    protocol_schemas,
)
from qops.protocol.state import BackendStateStore, resolve_state

logger = logging.getLogger(__name__)

TICK_S = 0.1
"""Longest wait of one loop turn: the bound on how late a stop request is noticed."""

_COMMANDS = ", ".join(c.value for c in Command)


class MetaServer:
    """The 2300 meta server.

    Args:
        config: What the backend is and reports.
        calibration: Source of the calibration values get_dynamic reports.
        state_store: Source of the state marks (OFFLINE, CALIBRATING leases).
        req_address: Where to bind the REP socket, e.g. ``tcp://*:4203``.
        pub_address: Where to bind the PUB socket, e.g. ``tcp://*:4204``.
        max_message_bytes: Requests longer than this get a failure reply.
        state_poll_s: How often the state store is read; a change is published at once.
            Default: a quarter of the heartbeat.
        context: ZeroMQ context to use; default a private one, terminated on close.
    """

    def __init__(
        self,
        config: BackendConfig,
        calibration: CalibrationSource,
        state_store: BackendStateStore,
        req_address: str,
        pub_address: str,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        state_poll_s: float | None = None,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
    ) -> None:
        self.config = config
        self.calibration = calibration
        self.state_store = state_store
        self.max_message_bytes = max_message_bytes
        self.heartbeat_s = config.heartbeat_s
        self.state_poll_s = state_poll_s if state_poll_s is not None else config.heartbeat_s / 4
        self.starttime = time.time()
        self.static = StaticInfo(
            protocol_version=PROTOCOL_VERSION,
            nqubits=config.nqubits,
            topology=config.topology,
            name=config.name,
            pgs=config.pgs,
            starttime=self.starttime,
            default_compiler_config=config.default_compiler_config,
            supports_raw_data=config.supports_raw_data,
        )
        self._static_payload: JsonObject = self.static.model_dump(mode="json")
        self._schemas: ProtocolSchemas = protocol_schemas()
        self._own_context = context is None
        self._context = context if context is not None else zmq.Context()
        self._rep = self._context.socket(zmq.REP)
        self._pub = self._context.socket(zmq.PUB)
        for sock in (self._rep, self._pub):
            sock.setsockopt(zmq.LINGER, 0)
        # A hard limit far above the cap: the peer is dropped unread instead of exhausting
        # memory; messages between the two limits get a failure reply.
        self._rep.setsockopt(zmq.MAXMSGSIZE, 4 * max_message_bytes)
        self._stop = threading.Event()
        self.state: BackendState | None = None
        try:
            self._rep.bind(req_address)
            self._pub.bind(pub_address)
        except zmq.ZMQError as e:
            self.close()
            raise ConfigurationError(
                "--req-address/--pub-address", f"{req_address} {pub_address}", f"cannot bind: {e}"
            ) from e
        self.req_endpoint = str(self._rep.getsockopt_string(zmq.LAST_ENDPOINT))
        self.pub_endpoint = str(self._pub.getsockopt_string(zmq.LAST_ENDPOINT))

    def stop(self) -> None:
        """Ask :meth:`serve` to return (safe from signal handlers and other threads)."""
        self._stop.set()

    def close(self) -> None:
        """Close the sockets (and the context if this server created it)."""
        self._rep.close(linger=0)
        self._pub.close(linger=0)
        if self._own_context:
            self._context.term()

    def serve(self) -> None:
        """Serve requests and publish state until :meth:`stop` is called."""
        poller = zmq.Poller()
        poller.register(self._rep, zmq.POLLIN)
        logger.info(
            "2300 meta server %s serving on %s, publishing on %s",
            self.config.name,
            self.req_endpoint,
            self.pub_endpoint,
        )
        next_poll = 0.0
        next_heartbeat = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + self.state_poll_s
                if self._refresh_state() or now >= next_heartbeat:
                    self._publish_state()
                    next_heartbeat = now + self.heartbeat_s
            wait_s = min(TICK_S, max(0.0, min(next_poll, next_heartbeat) - time.monotonic()))
            if poller.poll(int(wait_s * 1000)):
                frames = self._rep.recv_multipart()
                self._rep.send(self.reply_to(frames))
        logger.info("2300 meta server %s stopped", self.config.name)

    def _refresh_state(self) -> bool:
        """Read the store; return whether the state changed."""
        try:
            state = resolve_state(self.state_store.marks(self.config.chip))
        except StateStoreError as e:
            logger.warning("keeping state %s: %s", self.state, e)
            if self.state is None:
                self.state = BackendState.IDLE
                return True
            return False
        changed = state != self.state
        if changed:
            logger.info("state of %s: %s -> %s", self.config.chip, self.state, state)
            self.state = state
        return changed

    def _publish_state(self) -> None:
        assert self.state is not None
        message = StateMessage(state=self.state, timestamp=time.time()).to_wire()
        self._schemas.check("publish_state/message", message, "outgoing publish_state")
        self._pub.send(encode(message))

    def reply_to(self, frames: list[bytes]) -> bytes:
        """Return the reply frame for a request's frames; never raises."""
        session_id: str | None = None
        try:
            if len(frames) != 1:
                raise ProtocolError("request", f"expected one frame, received {len(frames)}")
            request = decode(frames[0], "request", self.max_message_bytes)
            raw_session = request.get("session_id")
            if self._schemas.is_valid("base/request", {"command": "x", "session_id": raw_session}):
                session_id = str(raw_session)
            self._schemas.check("base/request", request, "request")
            command = request["command"]
            if command not in Command.__members__.values():
                raise ProtocolError(
                    "request", f"unknown command {command!r}; expected one of {_COMMANDS}"
                )
            self._schemas.check(f"{command}/request", request, f"{command} request")
            assert session_id is not None
            return self._answer(Command(str(command)), session_id)
        except ProtocolError as e:
            logger.warning("refused a request: %s", e)
            return self._failure(session_id, str(e))
        except Exception as e:
            # The process edge of one request: whatever failed, the REP socket must reply.
            logger.exception("internal error answering a request")
            return self._failure(session_id, f"internal error: {type(e).__name__}: {e}")

    def _answer(self, command: Command, session_id: str) -> bytes:
        if command is Command.GET_STATIC:
            payload = self._static_payload
        else:
            values = self.calibration.current_parameters(self.config.chip)
            payload = dynamic_payload(values, self.config.extra_metrics)
        reply: JsonObject = {"status": "success", "session_id": session_id, "payload": payload}
        self._schemas.check(f"{command}/reply_success", reply, f"outgoing {command} reply")
        return encode(reply)

    def _failure(self, session_id: str | None, error_msg: str) -> bytes:
        reply = FailureReply(session_id=session_id or new_session_id(), error_msg=error_msg)
        return encode(reply.to_wire())
