"""The 2300 side: answers requests on REP through a command table and publishes its state on PUB.

The job commands (initialize, execute, terminate) are answered by
:class:`~qops.backend.jobs.JobService`; the server publishes the state they change at once.

One thread owns both sockets (ZeroMQ sockets are not thread-safe). Every request gets
exactly one reply, a failure reply when the request is bad or answering it fails, so the
REP socket can never be left waiting for a send. Each loop turn waits at most
:data:`TICK_S`, so :meth:`MetaServer.stop` (e.g. from a SIGTERM handler) takes effect
within that time.

Nothing that reads a database runs on that thread: the state store is read by a watcher
thread (the loop publishes what it last read), and, with ``calibration_timeout_s`` set, the
calibration source is read on a worker thread that get_dynamic waits for at most that long
while the heartbeat keeps going. A MongoDB outage therefore never delays the heartbeat or
get_static, and get_dynamic answers with a failure in time.

Commands are a table from the command's name to a :class:`CommandHandler`; get_static and
get_dynamic are the built-in entries, and others are passed in as ``commands``.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Hashable, Mapping
from typing import Protocol

import zmq

from qops.backend.config import BackendConfig
from qops.backend.errors import CalibrationUnavailableError, StateStoreError
from qops.backend.jobs import JobService
from qops.backend.sources import CalibrationSource, dynamic_payload
from qops.backend.state import BackendStateStore, resolve_state
from qops.errors import ConfigurationError, QopsError
from qops.protocol.errors import ProtocolError
from qops.protocol.messages import (
    JOB_COMMANDS,
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
from qops.simulation.worker import SimulationWorker

logger = logging.getLogger(__name__)

TICK_S = 0.1
"""Longest wait of one loop turn: the bound on how late a stop request is noticed."""

SHOWN_CHARS = 80
"""How much of a client's string (an unknown command) a reply or log line quotes."""

_PROBE_SESSION = "00000000-0000-4000-8000-000000000000"


class CommandHandler(Protocol):
    """Answers one command: returns the success reply's payload, encoded and checked.

    Called on the server's thread with the request (already checked against
    ``schemas/<command>/request.schema.json``, or the base request schema if the command has
    none) and its session id. Returns the payload as
    the bytes of a JSON object (check it with :meth:`MetaServer.checked_payload`), or
    ``None`` for a success reply without a payload. A :class:`~qops.errors.QopsError`
    raised becomes a failure reply carrying its message; anything else an internal error.
    A handler must not block for long: the heartbeat waits for it.
    """

    def __call__(self, request: JsonObject, session_id: str) -> bytes | None: ...


def shown(value: object) -> str:
    """``repr(value)`` cut to :data:`SHOWN_CHARS` characters, saying how long it was."""
    text = repr(value)
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[:SHOWN_CHARS]}... ({len(text)} characters)"


class _StateWatcher:
    """Reads the state store on its own thread; the loop reads :attr:`state`."""

    def __init__(self, store: BackendStateStore, chip: str, period_s: float) -> None:
        self.store = store
        self.chip = chip
        self.period_s = period_s
        self.state: BackendState | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"state-{chip}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        # A read in progress is not waited for long (it may hang on an unreachable
        # database); the thread is a daemon and its result is no longer used.
        self._stop.set()
        self._thread.join(timeout=TICK_S)

    def read_now(self) -> None:
        """Read the store once, on the caller's thread (after a change the caller made)."""
        try:
            state = resolve_state(self.store.marks(self.chip))
        except StateStoreError as e:
            logger.warning("keeping state %s: %s", self.state, e)
            if self.state is None:
                self.state = BackendState.IDLE
        else:
            if state != self.state:
                logger.info("state of %s: %s -> %s", self.chip, self.state, state)
                self.state = state

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.read_now()
            except Exception:
                # The watcher's process edge: a surprise must not end the state reads.
                logger.exception("reading the state of %s failed", self.chip)
            self._stop.wait(self.period_s)


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
        calibration_timeout_s: If set, the calibration source is read on a worker thread and
            get_dynamic waits at most this long (seconds) for it before answering with a
            failure; the heartbeat goes on meanwhile. ``None``: read on the server's thread
            (for sources that never block, such as values held in memory).
        commands: More commands, by name, each with its request schema in ``schemas/``;
            get_static and get_dynamic cannot be replaced.
        context: ZeroMQ context to use; default a private one, terminated on close.
        simulation: The process execute runs circuits in; default one of the server's own.
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
        calibration_timeout_s: float | None = None,
        commands: Mapping[str, CommandHandler] | None = None,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        simulation: SimulationWorker | None = None,
    ) -> None:
        self.config = config
        self.calibration = calibration
        self.state_store = state_store
        self.max_message_bytes = max_message_bytes
        self.heartbeat_s = config.heartbeat_s
        self.state_poll_s = state_poll_s if state_poll_s is not None else config.heartbeat_s / 4
        self.calibration_timeout_s = calibration_timeout_s
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
        self._static_body = self.checked_payload(
            Command.GET_STATIC, self.static.model_dump(mode="json")
        )
        self.jobs = JobService(
            config, calibration, state_store, simulation, keepalive=self._heartbeat_if_due
        )
        self._commands: dict[str, CommandHandler] = dict(commands or {})
        for job_command in JOB_COMMANDS:
            self._commands[job_command.value] = self._job
        self._commands[Command.GET_STATIC.value] = self._get_static
        self._commands[Command.GET_DYNAMIC.value] = self._get_dynamic
        self._command_names = ", ".join(sorted(self._commands))
        self._dynamic_cache: tuple[tuple[int, Hashable], bytes] | None = None
        self._dynamic_lock = threading.Lock()
        self._reader: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: concurrent.futures.Future[bytes] | None = None
        self._watcher = _StateWatcher(state_store, config.chip, self.state_poll_s)
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
        self._started = time.monotonic()
        self._next_heartbeat = 0.0
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
        self.jobs.close()
        self._rep.close(linger=0)
        self._pub.close(linger=0)
        if self._reader is not None:
            # A read stuck on an unreachable database is not waited for.
            self._reader.shutdown(wait=False, cancel_futures=True)
            self._reader = None
        if self._own_context:
            self._context.term()

    def serve(self) -> None:
        """Serve requests and publish state until :meth:`stop` is called."""
        # A receive timeout rather than a poll per request: cheaper on the hot path. It
        # bounds how late the heartbeat, a state change and a stop request are handled.
        tick_ms = max(1, int(min(TICK_S, self.state_poll_s) * 1000))
        self._rep.setsockopt(zmq.RCVTIMEO, tick_ms)
        if self.calibration_timeout_s is not None and self._reader is None:
            self._reader = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="get-dynamic"
            )
        logger.info(
            "2300 meta server %s serving on %s, publishing on %s",
            self.config.name,
            self.req_endpoint,
            self.pub_endpoint,
        )
        self._started = time.monotonic()
        self._watcher.start()
        try:
            while not self._stop.is_set():
                self._tick()
                try:
                    frames = self._rep.recv_multipart()
                except zmq.Again:
                    continue
                self._rep.send(self.reply_to(frames))
        finally:
            self._watcher.stop()
        logger.info("2300 meta server %s stopped", self.config.name)

    def _tick(self) -> None:
        """Publish the state if it changed or the heartbeat is due; end an idle job session."""
        self.jobs.expire_idle()
        now = time.monotonic()
        state = self._watcher.state
        if state is None and now - self._started >= self.heartbeat_s:
            # The store has not answered yet: a heartbeat must still go out on time.
            state = BackendState.IDLE
        if state is None:
            return
        if state != self.state or now >= self._next_heartbeat:
            self.state = state
            self._publish_state()
            self._next_heartbeat = now + self.heartbeat_s

    def _heartbeat_if_due(self) -> None:
        """Publish the state if a heartbeat is due (while a long job keeps the loop busy)."""
        now = time.monotonic()
        if self.state is not None and now >= self._next_heartbeat:
            self._publish_state()
            self._next_heartbeat = now + self.heartbeat_s

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
            handler = self._commands.get(command) if isinstance(command, str) else None
            if handler is None or not self._schemas.is_valid(self._schema_of(command), request):
                self._explain_invalid(request)
            assert handler is not None
            session_id = str(request["session_id"])
            return self._success(session_id, handler(request, session_id))
        except QopsError as e:
            logger.warning("failure reply to %s: %s", _what(request), e)
            return self._failure(self._session_of(request), str(e))
        except Exception as e:
            # The process edge of one request: whatever failed, the REP socket must reply.
            logger.exception("internal error answering %s", _what(request))
            return self._failure(
                self._session_of(request), f"internal error: {type(e).__name__}: {e}"
            )

    def _explain_invalid(self, request: JsonObject) -> None:
        """Raise the ProtocolError that says what is wrong with an invalid request."""
        self._schemas.check("base/request", request, "request")
        command = request["command"]
        if command not in self._commands:
            raise ProtocolError(
                "request",
                f"unknown command {shown(command)}; expected one of {self._command_names}",
            )
        self._schemas.check(self._schema_of(command), request, f"{command} request")

    def _schema_of(self, command: object) -> str:
        """The request schema of a command: its own, else the base request's."""
        name = f"{command}/request"
        return name if self._schemas.has(name) else "base/request"

    def _session_of(self, request: object) -> str:
        """The request's session_id if it is a string (the protocol's rule), else a fresh one."""
        if isinstance(request, dict):
            session_id = request.get("session_id")
            if isinstance(session_id, str):
                return session_id
        return new_session_id()

    def _success(self, session_id: str, body: bytes | None) -> bytes:
        # json.dumps escapes whatever the client put in its session id.
        session = json.dumps(session_id).encode()
        if body is None:
            return b'{"status":"success","session_id":%s}' % session
        return b'{"status":"success","session_id":%s,"payload":%s}' % (session, body)

    def checked_payload(self, command: str, payload: JsonObject) -> bytes:
        """Check a payload as the whole success reply of ``command`` and return it encoded.

        Raises:
            ProtocolError: The reply would not match ``<command>/reply_success``.
        """
        reply: JsonObject = {"status": "success", "session_id": _PROBE_SESSION, "payload": payload}
        self._schemas.check(f"{command}/reply_success", reply, f"outgoing {command} reply")
        return encode(payload)

    def _job(self, request: JsonObject, session_id: str) -> bytes | None:
        body = self.jobs.answer(request, session_id)
        if request["command"] != Command.EXECUTE:
            # initialize and terminate change the chip's lease: publish the new state now.
            self._watcher.read_now()
            self._tick()
        return body

    def _get_static(self, request: JsonObject, session_id: str) -> bytes:
        return self._static_body

    def _get_dynamic(self, request: JsonObject, session_id: str) -> bytes:
        reader = self._reader
        if reader is None or self.calibration_timeout_s is None:
            return self._dynamic_body()
        pending = self._pending
        if pending is None or pending.done():
            # One read at a time: while one hangs on the database, later requests wait for
            # the same read instead of queueing more.
            pending = reader.submit(self._dynamic_body)
            self._pending = pending
        deadline = time.monotonic() + self.calibration_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                body = pending.result(timeout=max(0.0, min(remaining, TICK_S)))
            except concurrent.futures.TimeoutError:
                if remaining <= 0:
                    raise CalibrationUnavailableError(
                        self.config.chip,
                        f"the calibration source gave no answer within "
                        f"{self.calibration_timeout_s:g} s",
                    ) from None
                self._tick()
                continue
            self._pending = None
            return body

    def _dynamic_body(self) -> bytes:
        """The get_dynamic payload, encoded; rebuilt only when the calibration changed."""
        with self._dynamic_lock:
            source = self.calibration
            version = source.parameters_version(self.config.chip)
            cached = self._dynamic_cache
            if version is not None and cached is not None and cached[0] == (id(source), version):
                return cached[1]
            values = source.current_parameters(self.config.chip)
            body = self.checked_payload(
                Command.GET_DYNAMIC, dynamic_payload(values, self.config.extra_metrics)
            )
            if version is not None:
                self._dynamic_cache = ((id(source), version), body)
            return body

    def _failure(self, session_id: str, error_msg: str) -> bytes:
        return encode(FailureReply(session_id=session_id, error_msg=error_msg).to_wire())


def _what(request: object) -> str:
    """How a log line names a request: its command, shortened."""
    if isinstance(request, dict) and "command" in request:
        return f"command {shown(request['command'])}"
    return "a request"
