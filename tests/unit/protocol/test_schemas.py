"""Every example message of the protocol passes its schema; broken ones are refused."""

from __future__ import annotations

import copy

import pytest

from qops.protocol.errors import MessageTooLargeError, ProtocolError
from qops.protocol.messages import StaticInfo
from qops.protocol.schemas import SCHEMA_NAMES, ProtocolSchemas, decode, encode, schema_root

SESSION = "3f0c8a4e-8d0b-4a4e-9a53-0d6b8f1c2e7a"

GET_STATIC_PAYLOAD = {
    "protocol_version": 3,
    "nqubits": 3,
    "topology": [[0, 1], [1, 2]],
    "name": "spin-2",
    "pgs": ["X", "Y", "CNOT", "MEASURE"],
    "starttime": 1732000000.25,
    "default_compiler_config": {
        "decomposition": [
            {
                "path": "opensquirrel.passes.decomposer.mckay_decomposer.McKayDecomposer",
                "method": "decompose",
                "arguments": {},
            }
        ],
        "mapping": [],
        "optimization": [],
        "routing": [],
    },
    "supports_raw_data": False,
}

DYNAMIC_EXAMPLES = [
    {"fridge_temperature_in_mk": 8.4},
    {"t1": {"__labels__": ["qubit"], "q0": 0.995, "q1": 0.988}},
    {"cnot_fidelity": {"__labels__": ["qubit1", "qubit2"], "q1": {"q0": 0.995}}},
    {},
]


@pytest.fixture(scope="module")
def schemas() -> ProtocolSchemas:
    return ProtocolSchemas()


def success(payload: dict[str, object]) -> dict[str, object]:
    return {"status": "success", "session_id": SESSION, "payload": payload}


@pytest.mark.parametrize("command", ["get_static", "get_dynamic"])
def test_request_schema_examples_with_and_without_payload_pass(
    schemas: ProtocolSchemas, command: str
) -> None:
    for message in (
        {"command": command, "session_id": SESSION},
        {"command": command, "session_id": SESSION, "payload": {}},
    ):
        schemas.check("base/request", message, "request")
        schemas.check(f"{command}/request", message, "request")


def test_request_schema_other_command_fails_command_specific_schema(
    schemas: ProtocolSchemas,
) -> None:
    with pytest.raises(ProtocolError, match="command"):
        schemas.check("get_static/request", {"command": "get_dynamic", "session_id": SESSION}, "r")


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"command": "get_static"}, "session_id"),
        ({"command": "get_static", "session_id": 42}, "session_id"),
        ({"session_id": SESSION}, "command"),
    ],
)
def test_request_schema_bad_session_or_command_names_field(
    schemas: ProtocolSchemas, message: dict[str, object], field: str
) -> None:
    with pytest.raises(ProtocolError, match=field):
        schemas.check("base/request", message, "request")


def test_get_static_reply_example_passes_and_parses(schemas: ProtocolSchemas) -> None:
    schemas.check("get_static/reply_success", success(GET_STATIC_PAYLOAD), "reply")
    static = StaticInfo.model_validate(GET_STATIC_PAYLOAD)
    assert static.topology == [(0, 1), (1, 2)]
    assert static.default_compiler_config.decomposition[0].method == "decompose"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("protocol_version", 2),
        ("nqubits", "3"),
        ("topology", [[0, 1, 2]]),
        ("pgs", [1]),
        ("starttime", "now"),
        ("supports_raw_data", "no"),
    ],
)
def test_get_static_reply_bad_field_is_refused_naming_it(
    schemas: ProtocolSchemas, field: str, value: object
) -> None:
    payload = copy.deepcopy(GET_STATIC_PAYLOAD)
    payload[field] = value
    with pytest.raises(ProtocolError, match=f"payload/{field}"):
        schemas.check("get_static/reply_success", success(payload), "reply")


@pytest.mark.parametrize("payload", DYNAMIC_EXAMPLES)
def test_get_dynamic_reply_examples_pass(
    schemas: ProtocolSchemas, payload: dict[str, object]
) -> None:
    schemas.check("get_dynamic/reply_success", success(payload), "reply")


def test_get_dynamic_reply_payload_not_object_is_refused(schemas: ProtocolSchemas) -> None:
    with pytest.raises(ProtocolError, match="payload"):
        schemas.check("get_dynamic/reply_success", success([1.0]), "reply")  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["get_static", "get_dynamic"])
def test_failure_reply_example_passes_and_needs_error_msg(
    schemas: ProtocolSchemas, command: str
) -> None:
    reply = {"status": "failure", "session_id": SESSION, "payload": {"error_msg": "busy"}}
    schemas.check(f"{command}/reply_failure", reply, "reply")
    reply["payload"] = {}
    with pytest.raises(ProtocolError, match="error_msg"):
        schemas.check(f"{command}/reply_failure", reply, "reply")


@pytest.mark.parametrize("state", ["IDLE", "EXECUTING", "CALIBRATING", "OFFLINE"])
def test_publish_state_example_passes(schemas: ProtocolSchemas, state: str) -> None:
    message = {"command": "publish_state", "payload": {"state": state, "timestamp": 1.5}}
    schemas.check("publish_state/message", message, "publish_state")


def test_publish_state_unknown_state_is_refused(schemas: ProtocolSchemas) -> None:
    message = {"command": "publish_state", "payload": {"state": "UNREACHABLE", "timestamp": 1}}
    with pytest.raises(ProtocolError, match="payload/state"):
        schemas.check("publish_state/message", message, "publish_state")


def test_schema_root_holds_every_schema_file() -> None:
    root = schema_root()
    for name in SCHEMA_NAMES:
        assert root.joinpath(*f"{name}.schema.json".split("/")).is_file(), name


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"", "empty message"),
        (b"\xff\xfe\x00garbage", "not UTF-8|not valid JSON"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object, found list"),
        (b'{"value": nan}', "not valid JSON"),
        (b'{"value": 1' + b"0" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_decode_bad_frame_says_why(frame: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        decode(frame, "request")


def test_decode_oversize_frame_is_refused_with_sizes() -> None:
    with pytest.raises(MessageTooLargeError, match="101 bytes exceeds the cap of 100 bytes"):
        decode(b"x" * 101, "request", max_bytes=100)


def test_decode_reads_what_python_json_writes() -> None:
    message = decode(b'{"a": NaN, "b": Infinity, "c": -Infinity, "d": 18446744073709551615}', "r")
    assert message["a"] != message["a"]
    assert message["b"] == float("inf")
    assert message["c"] == float("-inf")
    assert message["d"] == 2**64 - 1


def test_encode_non_finite_value_is_refused() -> None:
    with pytest.raises(ProtocolError, match="cannot be encoded"):
        encode({"t1": float("nan")})


def corpus() -> list[object]:
    """Valid and broken messages of every kind, to compare the two validators on."""
    messages: list[object] = [None, 3, "x", [], {}, True]
    for command in ("get_static", "get_dynamic", "initialize", "terminate", "reboot", "", 5):
        for session in (SESSION, "abc", None, 7, SESSION.upper()):
            messages.append({"command": command, "session_id": session})
            messages.append({"command": command, "session_id": session, "payload": None})
            messages.append({"command": command, "session_id": session, "payload": []})
    payloads: list[object] = [*DYNAMIC_EXAMPLES, GET_STATIC_PAYLOAD, {"error_msg": "x"}, [], {}]
    for field, value in [
        ("protocol_version", 3.0),
        ("protocol_version", True),
        ("nqubits", 2.0),
        ("nqubits", -1),
        ("topology", [[0, 1.5]]),
        ("topology", [[0]]),
        ("pgs", ["X1", "_X", "mX90"]),
        ("starttime", float("nan")),
        ("starttime", float("inf")),
        ("nqubits", 2**70),
        ("default_compiler_config", {"mapping": [{"path": "opensquirrel.x", "method": "m"}]}),
        ("default_compiler_config", {"mapping": [{"path": "other.x", "method": "m"}]}),
        ("default_compiler_config", {"extra": []}),
    ]:
        payloads.append({**GET_STATIC_PAYLOAD, field: value})
    payloads += [
        {"m": True},
        {"m": "1"},
        {"m": {"__labels__": []}},
        {"m": {"__labels__": [1]}},
        {"m": {"__labels__": ["q"], "q0": "x"}},
    ]
    for status in ("success", "failure", "other"):
        for payload in payloads:
            messages.append({"status": status, "session_id": SESSION, "payload": payload})
    messages += job_messages()
    for state in ("IDLE", "BUSY", None):
        for stamp in (1.0, "1", None):
            messages.append(
                {"command": "publish_state", "payload": {"state": state, "timestamp": stamp}}
            )
    return messages


def _non_finite(message: object) -> bool:
    if isinstance(message, float):
        return message != message or message in (float("inf"), float("-inf"))
    if isinstance(message, dict):
        return any(_non_finite(value) for value in message.values())
    if isinstance(message, list):
        return any(_non_finite(value) for value in message)
    return False


def job_messages() -> list[object]:
    """execute requests and replies, valid and broken, and bare simple success replies."""
    job = {"job_id": 1, "circuit": "version 3.0", "number_of_shots": 4}
    payloads: list[object] = [
        job,
        {**job, "include_raw_data": True},
        {**job, "number_of_shots": 0},
        {**job, "job_id": "1"},
        {"circuit": "version 3.0", "number_of_shots": 4},
        None,
    ]
    messages: list[object] = [
        {"command": "execute", "session_id": SESSION, "payload": p} for p in payloads
    ]
    for result in (
        {"job_id": 1, "results": {"01": 3}, "raw_data": ["01"] * 3},
        {"job_id": 1, "results": {"01": 3}, "raw_data": None},
        {"job_id": 1, "results": {"01": 3.5}},
        {"job_id": 1},
    ):
        messages.append({"status": "success", "session_id": SESSION, "payload": result})
    messages += [{"status": s, "session_id": SESSION} for s in ("success", "failure")]
    return messages


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_fast_validator_agrees_with_jsonschema(schemas: ProtocolSchemas, name: str) -> None:
    # jsonschema_rs gives the verdict; it differs from jsonschema only on NaN/Infinity,
    # where is_valid asks jsonschema.
    messages = corpus()
    disagreements = [
        message
        for message in messages
        if not _non_finite(message)
        and schemas.fast_is_valid(name, message) != schemas.reference_is_valid(name, message)
    ]
    assert disagreements == []
    assert all(
        schemas.is_valid(name, message) == schemas.reference_is_valid(name, message)
        for message in messages
    )
    assert any(schemas.is_valid(name, message) for message in messages)
