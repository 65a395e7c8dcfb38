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
        ({"command": "get_static", "session_id": "abc"}, "session_id"),
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
        ("pgs", ["cnot"]),
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


def test_get_dynamic_reply_tree_without_labels_is_refused(schemas: ProtocolSchemas) -> None:
    with pytest.raises(ProtocolError, match="payload/t1"):
        schemas.check("get_dynamic/reply_success", success({"t1": {"q0": 1.0}}), "reply")


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
        (b'{"value": NaN}', "not valid JSON"),
    ],
)
def test_decode_bad_frame_says_why(frame: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        decode(frame, "request")


def test_decode_oversize_frame_is_refused_with_sizes() -> None:
    with pytest.raises(MessageTooLargeError, match="101 bytes exceeds the cap of 100 bytes"):
        decode(b"x" * 101, "request", max_bytes=100)


def test_encode_non_finite_value_is_refused() -> None:
    with pytest.raises(ProtocolError, match="cannot be encoded"):
        encode({"t1": float("nan")})


def corpus() -> list[object]:
    """Valid and broken messages of every kind, to compare the two validators on."""
    messages: list[object] = [None, 3, "x", [], {}, True]
    for command in ("get_static", "get_dynamic", "reboot", "", 5):
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
        ("pgs", ["X1", "_X"]),
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
    for state in ("IDLE", "BUSY", None):
        for stamp in (1.0, "1", None):
            messages.append(
                {"command": "publish_state", "payload": {"state": state, "timestamp": stamp}}
            )
    return messages


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_compiled_validator_agrees_with_jsonschema(schemas: ProtocolSchemas, name: str) -> None:
    disagreements = [
        message
        for message in corpus()
        if schemas.is_valid(name, message) != schemas.reference_is_valid(name, message)
    ]
    assert disagreements == []
    assert any(schemas.is_valid(name, message) for message in corpus())
