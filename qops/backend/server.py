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
from collections.abc import Hashable

import zmq

from qops.backend.config import BackendConfig
from qops.backend.errors import CalibrationUnavailableError, StateStoreError
from qops.backend.sources import CalibrationSource, dynamic_payload
from qops.backend.state import BackendStateStore, resolve_state
from qops.errors import ConfigurationError
from qops.protocol.errors import ProtocolError
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

logger = logging.getLogger(__name__)

TICK_S = 0.1
"""Longest wait of one loop turn: the bound on how late a stop request is noticed."""

_COMMANDS = ", ".join(c.value for c in Command)
_KNOWN = frozenset(c.value for c in Command)
_PROBE_SESSION = "00000000-0000-4000-8000-000000000000"


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
        self._schemas: ProtocolSchemas = protocol_schemas()
        self._static_body = self._checked_body(
            Command.GET_STATIC, self.static.model_dump(mode="json")
        )
        self._dynamic_cache: tuple[tuple[int, Hashable], bytes] | None = None
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
        # A receive timeout rather than a poll per request: cheaper on the hot path. It
        # bounds how late the state poll, the heartbeat and a stop request are handled.
        tick_ms = max(1, int(min(TICK_S, self.state_poll_s) * 1000))
        self._rep.setsockopt(zmq.RCVTIMEO, tick_ms)
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
            changed = False
            if now >= next_poll:
                next_poll = now + self.state_poll_s
                changed = self._refresh_state()
            if changed or now >= next_heartbeat:
                self._publish_state()
                next_heartbeat = now + self.heartbeat_s
            try:
                frames = self._rep.recv_multipart()
            except zmq.Again:
                continue
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
        request: object = None
        try:
            if len(frames) != 1:
                raise ProtocolError("request", f"expected one frame, received {len(frames)}")
            request = decode(frames[0], "request", self.max_message_bytes)
            command = request.get("command")
            if command not in _KNOWN or not self._schemas.is_valid(f"{command}/request", request):
                self._explain_invalid(request)
            return self._answer(Command(str(command)), str(request["session_id"]))
        except ProtocolError as e:
            logger.warning("refused a request: %s", e)
            return self._failure(self._session_of(request), str(e))
        except CalibrationUnavailableError as e:
            logger.warning("get_dynamic failed: %s", e)
            return self._failure(self._session_of(request), str(e))
        except Exception as e:
            # The process edge of one request: whatever failed, the REP socket must reply.
            logger.exception("internal error answering a request")
            return self._failure(
                self._session_of(request), f"internal error: {type(e).__name__}: {e}"
            )

    def _explain_invalid(self, request: JsonObject) -> None:
        """Raise the ProtocolError that says what is wrong with an invalid request."""
        self._schemas.check("base/request", request, "request")
        command = request["command"]
        if command not in _KNOWN:
            raise ProtocolError(
                "request", f"unknown command {command!r}; expected one of {_COMMANDS}"
            )
        self._schemas.check(f"{command}/request", request, f"{command} request")

    def _session_of(self, request: object) -> str:
        """The request's session_id if it has a valid one, else a fresh one."""
        if isinstance(request, dict):
            probe = {"command": "get_static", "session_id": request.get("session_id")}
            if self._schemas.is_valid("base/request", probe):
                return str(probe["session_id"])
        return new_session_id()

    def _answer(self, command: Command, session_id: str) -> bytes:
        body = self._static_body if command is Command.GET_STATIC else self._dynamic_body()
        # session_id matched the UUID pattern of the request schema: nothing to escape.
        return b'{"status":"success","session_id":"%s","payload":%s}' % (
            session_id.encode(),
            body,
        )

    def _checked_body(self, command: Command, payload: JsonObject) -> bytes:
        """Check a payload as a whole success reply and return it encoded."""
        reply: JsonObject = {"status": "success", "session_id": _PROBE_SESSION, "payload": payload}
        self._schemas.check(f"{command}/reply_success", reply, f"outgoing {command} reply")
        return encode(payload)

    def _dynamic_body(self) -> bytes:
        """The get_dynamic payload, encoded; rebuilt only when the calibration changed."""
        source = self.calibration
        version = source.parameters_version(self.config.chip)
        cached = self._dynamic_cache
        if version is not None and cached is not None and cached[0] == (id(source), version):
            return cached[1]
        values = source.current_parameters(self.config.chip)
        body = self._checked_body(
            Command.GET_DYNAMIC, dynamic_payload(values, self.config.extra_metrics)
        )
        if version is not None:
            self._dynamic_cache = ((id(source), version), body)
        return body

    def _failure(self, session_id: str, error_msg: str) -> bytes:
        return encode(FailureReply(session_id=session_id, error_msg=error_msg).to_wire())
