"""Probe messages of the meta protocol (v3) with the verdict the protocol's schemas give.

Each probe is one wire message (JSON text as Python's ``json.dumps`` writes it, which is
how the protocol's reference implementation encodes: so ``NaN`` and integers of any size
can occur) and the schema it is checked against, in qops's layout (``get_static/request``,
...). ``valid`` is the verdict of the protocol's v3 schemas under JSON Schema 2020-12
semantics (``format`` is an annotation: the protocol's documentation calls ``session_id``
"an arbitrary string ... copied into the reply"). The table was written from the schemas
and the documentation pages of the protocol; the fields each v3 schema constrains:

- requests: ``command`` (the command's constant) and ``session_id`` (a string) required,
  nothing else constrained (any ``payload``, any extra key);
- failure replies: ``status`` "failure", ``session_id`` a string, ``payload`` an object with
  a string ``error_msg``;
- get_static: ``protocol_version`` 3, ``nqubits`` an integer, ``topology`` pairs of integers,
  ``name`` a string, ``pgs`` strings, ``starttime`` a number, ``supports_raw_data`` a
  boolean, ``default_compiler_config`` an object whose four known stages are arrays of passes
  (``path`` and ``method`` strings required, ``arguments`` an object); other keys free;
- get_dynamic: ``payload`` any object;
- publish_state: ``command`` "publish_state", ``payload.state`` one of the four states,
  ``payload.timestamp`` a number.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

SESSION = "eb4fdc2c-755b-47d8-af76-bbca2dce554d"
MCKAY = "opensquirrel.passes.decomposer.mckay_decomposer.McKayDecomposer"


@dataclass(frozen=True)
class Probe:
    """One message, the schema it is judged by and the protocol's verdict."""

    schema: str
    wire: str
    valid: bool
    why: str

    @property
    def id(self) -> str:
        return f"{self.schema}:{'ok' if self.valid else 'bad'}:{self.why}"


def _wire(message: object) -> str:
    # The protocol's encoder: json.dumps with its defaults (NaN and Infinity written).
    return json.dumps(message)


STATIC_PAYLOAD: dict[str, object] = {
    "nqubits": 5,
    "protocol_version": 3,
    "topology": [[0, 2], [1, 2], [3, 2], [4, 2]],
    "name": "Starmon-5",
    "pgs": ["X", "Y"],
    "starttime": 1690061619.610174,
    "supports_raw_data": True,
    "default_compiler_config": {
        "decomposition": [{"path": MCKAY, "method": "decompose", "arguments": {}}]
    },
}


def _request(command: str, **changes: object) -> dict[str, object]:
    message: dict[str, object] = {"command": command, "session_id": SESSION}
    message.update(changes)
    return message


def _static(**changes: object) -> dict[str, object]:
    payload = copy.deepcopy(STATIC_PAYLOAD)
    for key, value in changes.items():
        if value is _DROP:
            del payload[key]
        else:
            payload[key] = value
    return {"status": "success", "payload": payload, "session_id": SESSION}


def _static_pass(**changes: object) -> dict[str, object]:
    one: dict[str, object] = {"path": MCKAY, "method": "decompose", "arguments": {}}
    for key, value in changes.items():
        if value is _DROP:
            del one[key]
        else:
            one[key] = value
    return _static(default_compiler_config={"decomposition": [one]})


def _dynamic(payload: object, **changes: object) -> dict[str, object]:
    message: dict[str, object] = {"status": "success", "session_id": SESSION, "payload": payload}
    message.update(changes)
    return message


def _failure(**changes: object) -> dict[str, object]:
    message: dict[str, object] = {
        "status": "failure",
        "session_id": SESSION,
        "payload": {"error_msg": "Lorem ipsum"},
    }
    for key, value in changes.items():
        if value is _DROP:
            del message[key]
        else:
            message[key] = value
    return message


def _state(state: object = "IDLE", timestamp: object = 1690061619.610174) -> dict[str, object]:
    return {"command": "publish_state", "payload": {"state": state, "timestamp": timestamp}}


_DROP = object()

_BIG = 2**70
"""An integer beyond int64 (and uint64)."""


def _probes() -> list[Probe]:
    probes: list[Probe] = []

    def add(schema: str, message: object, valid: bool, why: str) -> None:
        probes.append(Probe(schema, _wire(message), valid, why))

    for command in ("get_static", "get_dynamic"):
        schema = f"{command}/request"
        add(schema, _request(command), True, "docs example")
        add(schema, _request(command, session_id="job-42"), True, "session_id not a UUID")
        add(schema, _request(command, session_id=""), True, "empty session_id")
        add(schema, _request(command, payload={}), True, "empty payload")
        add(schema, _request(command, payload="ignored"), True, "payload a string")
        add(schema, _request(command, extra=1), True, "extra key")
        add(schema, {"command": command}, False, "no session_id")
        add(schema, _request(command, session_id=42), False, "session_id a number")
        add(schema, _request(command, session_id=None), False, "session_id null")
        add(schema, {"session_id": SESSION}, False, "no command")
        add(schema, _request(command.upper()), False, "command upper case")
        other = "get_dynamic" if command == "get_static" else "get_static"
        add(schema, _request(other), False, "the other command")
        add(schema, [_request(command)], False, "not an object")

    s = "get_static/reply_success"
    add(s, _static(), True, "docs example")
    add(s, _static(pgs=["mX90", "Rx", "measure", "CZ"]), True, "QuIS gate names")
    add(s, _static(pgs=[]), True, "no gates")
    add(s, _static(pgs=[1]), False, "gate not a string")
    add(
        s,
        _static(default_compiler_config={"decomposition": [], "custom_stage": []}),
        True,
        "extra compiler stage",
    )
    add(s, _static_pass(path="mylab.passes.Native"), True, "pass path outside opensquirrel")
    add(s, _static_pass(name="mckay"), True, "pass with an extra key")
    add(s, _static_pass(method="decompose-all"), True, "method not an identifier")
    add(s, _static_pass(arguments=_DROP), True, "pass without arguments")
    add(s, _static_pass(method=_DROP), False, "pass without method")
    add(s, _static_pass(path=_DROP), False, "pass without path")
    add(s, _static_pass(arguments=[]), False, "arguments a list")
    add(s, _static(default_compiler_config={"mapping": {}}), False, "stage not a list")
    add(s, _static(default_compiler_config=[]), False, "compiler config a list")
    add(s, _static(default_compiler_config=_DROP), True, "no compiler config")
    add(s, _static(default_compiler_config={}), True, "empty compiler config")
    add(s, _static(nqubits=-1), True, "negative nqubits")
    add(s, _static(nqubits=5.0), True, "integral float nqubits")
    add(s, _static(nqubits=_BIG), True, "nqubits beyond int64")
    add(s, _static(nqubits="5"), False, "nqubits a string")
    add(s, _static(nqubits=True), False, "nqubits a boolean")
    add(s, _static(nqubits=5.5), False, "fractional nqubits")
    add(s, _static(topology=[]), True, "no edges")
    add(s, _static(topology=[[-1, 2]]), True, "negative qubit index")
    add(s, _static(topology=[[0, 1, 2]]), False, "edge of three")
    add(s, _static(topology=[[0]]), False, "edge of one")
    add(s, _static(topology=[[0, "1"]]), False, "edge with a string")
    add(s, _static(name=""), True, "empty name")
    add(s, _static(name=5), False, "name a number")
    add(s, _static(protocol_version=2), False, "protocol version 2")
    add(s, _static(protocol_version=_DROP), False, "no protocol version")
    add(s, _static(starttime=1690061619), True, "integer starttime")
    add(s, _static(starttime=float("nan")), True, "NaN starttime (json.dumps writes it)")
    add(s, _static(starttime="now"), False, "starttime a string")
    add(s, _static(supports_raw_data=_DROP), True, "no supports_raw_data")
    add(s, _static(supports_raw_data="no"), False, "supports_raw_data a string")
    add(s, _static(vendor={"fridge": "BF-LD400"}), True, "extra payload key")
    add(s, _static(name=_DROP), False, "no name")
    add(s, dict(_static(), session_id="job-42"), True, "session_id not a UUID")
    add(s, {k: v for k, v in _static().items() if k != "session_id"}, False, "no session_id")
    add(s, dict(_static(), status="failure"), False, "status failure")

    d = "get_dynamic/reply_success"
    add(d, _dynamic({"fridge_temperature_in_mk": 8.4}), True, "docs example 1")
    add(d, _dynamic({"t1": {"__labels__": ["qubit"], "q0": 0.995, "q1": 0.988}}), True, "ex 2")
    add(
        d,
        _dynamic({"cnot_fidelity": {"__labels__": ["qubit1", "qubit2"], "q1": {"q0": 0.995}}}),
        True,
        "docs example 3",
    )
    add(d, _dynamic({}), True, "no metrics")
    add(d, _dynamic({"fridge": "cold", "t1": 0.5}), True, "a string metric")
    add(d, _dynamic({"t1": {"q0": 1.0}}), True, "tree without __labels__")
    add(d, _dynamic({"t1": {"__labels__": [], "q0": 1.0}}), True, "empty __labels__")
    add(d, _dynamic({"t1": float("nan"), "t2": 1.0}), True, "NaN metric")
    add(d, _dynamic({"count": _BIG}), True, "integer beyond int64")
    add(d, _dynamic({"bad\u0000key": 1.0}), True, "NUL in a key")
    add(d, _dynamic({"t1": [1, 2]}), True, "a list metric")
    add(d, _dynamic({"up": True}), True, "a boolean metric")
    add(d, _dynamic([1.0]), False, "payload a list")
    add(d, _dynamic(None), False, "payload null")
    add(d, {"status": "success", "session_id": SESSION}, False, "no payload")
    add(d, _dynamic({}, session_id="job-42"), True, "session_id not a UUID")
    add(d, _dynamic({}, status="failure"), False, "status failure")
    add(d, _dynamic({}, version="0.2.0"), True, "extra key")

    for command in ("get_static", "get_dynamic"):
        f = f"{command}/reply_failure"
        add(f, _failure(), True, "docs example")
        add(f, _failure(session_id="job-42"), True, "session_id not a UUID")
        add(f, _failure(payload={"error_msg": "x", "code": 3}), True, "extra payload key")
        add(f, _failure(payload={}), False, "no error_msg")
        add(f, _failure(payload={"error_msg": 5}), False, "error_msg a number")
        add(f, _failure(session_id=_DROP), False, "no session_id")
        add(f, _failure(status="success"), False, "status success")
        add(f, _failure(payload=_DROP), False, "no payload")

    p = "publish_state/message"
    for state in ("IDLE", "EXECUTING", "CALIBRATING", "OFFLINE"):
        add(p, _state(state), True, f"state {state}")
    add(p, _state("UNREACHABLE"), False, "state UNREACHABLE")
    add(p, _state("idle"), False, "state lower case")
    add(p, _state(timestamp=1690061619), True, "integer timestamp")
    add(p, _state(timestamp=float("nan")), True, "NaN timestamp")
    add(p, _state(timestamp=float("inf")), True, "Infinity timestamp")
    add(p, _state(timestamp="now"), False, "timestamp a string")
    add(p, {"command": "publish_state", "payload": {"state": "IDLE"}}, False, "no timestamp")
    add(p, dict(_state(), session_id="x"), True, "extra key")
    add(p, {"command": "publish", "payload": _state()["payload"]}, False, "other command")
    add(p, {"command": "publish_state"}, False, "no payload")
    return probes


PROBES: tuple[Probe, ...] = tuple(_probes())
"""Every probe; ids are unique."""
