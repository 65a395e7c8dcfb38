"""Typed forms of the compute-runtime messages (protocol version 3).

The wire format is fixed by the protocol; these pydantic models give typed access to a
message after :mod:`qops.protocol.schemas` has validated it against the JSON Schemas.
The get_dynamic payload is kept as plain JSON (a dict) because its shape is open and it can
hold many thousands of samples; :mod:`qops.metrics.flatten` reads it.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PROTOCOL_VERSION = 3
"""The compute-runtime protocol version qops speaks."""

JsonObject = dict[str, object]
"""A decoded JSON object."""


class Command(StrEnum):
    """Commands 2200 sends on the request/reply socket."""

    GET_STATIC = "get_static"
    GET_DYNAMIC = "get_dynamic"
    INITIALIZE = "initialize"
    EXECUTE = "execute"
    TERMINATE = "terminate"


JOB_COMMANDS = frozenset({Command.INITIALIZE, Command.EXECUTE, Command.TERMINATE})
"""The commands of running circuits (docs/request/locking.md and execute.md of the spec)."""


PUBLISH_STATE = "publish_state"
"""The command of the messages 2300 publishes."""


class BackendState(StrEnum):
    """States 2300 publishes; the first that applies wins, in this order."""

    OFFLINE = "OFFLINE"
    CALIBRATING = "CALIBRATING"
    EXECUTING = "EXECUTING"
    IDLE = "IDLE"


UNREACHABLE = "UNREACHABLE"
"""The state 2200 reports when 2300's heartbeat is missing (never published by 2300)."""


def new_session_id() -> str:
    """Return a fresh session id (a random UUID in canonical text form)."""
    return str(uuid.uuid4())


class Request(BaseModel):
    """A request from 2200 to 2300."""

    model_config = ConfigDict(frozen=True)

    command: Command
    session_id: str
    payload: JsonObject | None = None

    def to_wire(self) -> JsonObject:
        """Return the message as the JSON object sent on the wire."""
        message: JsonObject = {"command": self.command.value, "session_id": self.session_id}
        if self.payload is not None:
            message["payload"] = self.payload
        return message


class FailureReply(BaseModel):
    """A failure reply; ``error_msg`` says what went wrong."""

    model_config = ConfigDict(frozen=True)

    status: Literal["failure"] = "failure"
    session_id: str
    error_msg: str

    def to_wire(self) -> JsonObject:
        """Return the message as the JSON object sent on the wire."""
        return {
            "status": self.status,
            "session_id": self.session_id,
            "payload": {"error_msg": self.error_msg},
        }


class CompilerPass(BaseModel):
    """One pass of a compiler stage: an OpenSquirrel class, its method and arguments.

    Other keys (the protocol allows them, e.g. a pass's ``name``) are kept as they came.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    path: str = Field(
        description="Dotted path of the class doing the pass, e.g. "
        "opensquirrel.passes.decomposer.mckay_decomposer.McKayDecomposer."
    )
    method: str = Field(description="Method opensquirrel calls on the instance.")
    arguments: dict[str, object] = Field(
        default_factory=dict, description="Keyword arguments for the class's constructor."
    )


class CompilerConfig(BaseModel):
    """The default compiler configuration: passes per stage, applied in order.

    The four stages below are the protocol's; other keys are allowed by the protocol and
    kept unchecked as they came (:meth:`other_stages`).
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    decomposition: list[CompilerPass] = Field(default_factory=list)
    mapping: list[CompilerPass] = Field(default_factory=list)
    optimization: list[CompilerPass] = Field(default_factory=list)
    routing: list[CompilerPass] = Field(default_factory=list)

    def stages(self) -> dict[str, list[CompilerPass]]:
        """Return the stages by name, in the order they run."""
        return {
            "decomposition": self.decomposition,
            "mapping": self.mapping,
            "optimization": self.optimization,
            "routing": self.routing,
        }

    def other_stages(self) -> dict[str, object]:
        """Return the keys beyond the protocol's four stages, as they came."""
        return dict(self.model_extra or {})


class StaticInfo(BaseModel):
    """The get_static payload: what 2300 is, fetched once per 2300 start.

    As lenient as the protocol's schema (any integer count, any gate and system name); keys
    the protocol does not name are kept as they came.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    protocol_version: int = PROTOCOL_VERSION
    nqubits: int
    topology: list[tuple[int, int]]
    name: str
    pgs: list[str] = Field(description="Gate names, e.g. QuIS instruction names (X, mX90).")
    starttime: float = Field(description="time.time() at start-up of 2300, in seconds.")
    default_compiler_config: CompilerConfig = Field(default_factory=CompilerConfig)
    supports_raw_data: bool = False


class StateMessage(BaseModel):
    """A publish_state message's payload."""

    model_config = ConfigDict(frozen=True)

    state: BackendState
    timestamp: float = Field(description="time.time() when 2300 published, in seconds.")

    def to_wire(self) -> JsonObject:
        """Return the message as the JSON object published on the wire."""
        return {
            "command": PUBLISH_STATE,
            "payload": {"state": self.state.value, "timestamp": self.timestamp},
        }
