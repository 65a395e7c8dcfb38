"""The job commands' schemas: the protocol's examples, docs/meta.md's, and what they refuse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qops.errors import QopsError
from qops.protocol.schemas import ProtocolSchemas, protocol_schemas

SESSION = "eb4fdc2c-755b-47d8-af76-bbca2dce554d"
DOCS = Path(__file__).parents[3] / "docs" / "meta.md"


@pytest.fixture(scope="module")
def schemas() -> ProtocolSchemas:
    return protocol_schemas()


def schema_of(message: dict[str, object]) -> str:
    if "command" in message:
        return f"{message['command']}/request"
    payload = message.get("payload")
    command = "execute" if isinstance(payload, dict) and "results" in payload else "initialize"
    return f"{command}/reply_{message['status']}"


def docs_examples() -> list[dict[str, object]]:
    """The JSON messages of docs/meta.md's section on running circuits, one per paragraph."""
    section = DOCS.read_text(encoding="utf-8").split("## Running circuits", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert block is not None
    decoder = json.JSONDecoder()
    text, messages = block.group(1), []
    index = 0
    while (start := text.find("{", index)) >= 0:
        message, index = decoder.raw_decode(text, start)
        messages.append(message)
    return messages


def test_docs_job_examples_pass_their_schemas(schemas: ProtocolSchemas) -> None:
    examples = docs_examples()
    assert [schema_of(m) for m in examples] == [
        "initialize/request",
        "initialize/reply_success",
        "execute/request",
        "execute/reply_success",
        "terminate/request",
        "initialize/reply_success",
    ]
    for message in examples:
        schemas.check(schema_of(message), message, "docs example")
    reply = examples[3]["payload"]
    assert isinstance(reply, dict)
    raw = reply["raw_data"]
    assert isinstance(raw, list)
    assert {s: raw.count(s) for s in set(raw)} == reply["results"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        # The protocol's own examples (docs/request/locking.md and execute.md).
        ("initialize/request", {"session_id": SESSION, "command": "initialize"}),
        ("terminate/request", {"session_id": SESSION, "command": "terminate"}),
        ("initialize/reply_success", {"session_id": SESSION, "status": "success"}),
        ("terminate/reply_success", {"session_id": SESSION, "status": "success"}),
        (
            "execute/request",
            {
                "session_id": SESSION,
                "command": "execute",
                "payload": {
                    "job_id": 1,
                    "circuit": "version 3.0\n\nqubits[2] q",
                    "include_raw_data": True,
                    "number_of_shots": 4,
                },
            },
        ),
        (
            "execute/reply_success",
            {
                "session_id": SESSION,
                "status": "success",
                "payload": {
                    "job_id": 1,
                    "results": {"000": 3, "001": 1},
                    "raw_data": ["000", "001", "000", "000"],
                },
            },
        ),
        (
            "execute/reply_success",
            {"session_id": SESSION, "status": "success", "payload": {"job_id": 1, "results": {}}},
        ),
        (
            "execute/reply_failure",
            {"session_id": SESSION, "status": "failure", "payload": {"error_msg": "x"}},
        ),
    ],
)
def test_job_schemas_protocol_examples_pass(
    schemas: ProtocolSchemas, name: str, message: dict[str, object]
) -> None:
    schemas.check(name, message, "protocol example")


JOB = {"job_id": 1, "circuit": "version 3.0", "number_of_shots": 4}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (None, "payload"),
        ({"circuit": "version 3.0", "number_of_shots": 4}, "job_id"),
        ({**JOB, "job_id": "1"}, "payload/job_id"),
        ({**JOB, "number_of_shots": 0}, "payload/number_of_shots"),
        ({**JOB, "circuit": 3}, "payload/circuit"),
        ({**JOB, "include_raw_data": "yes"}, "payload/include_raw_data"),
    ],
)
def test_execute_request_bad_payload_is_refused_naming_the_field(
    schemas: ProtocolSchemas, payload: object, field: str
) -> None:
    message: dict[str, object] = {"session_id": SESSION, "command": "execute"}
    if payload is not None:
        message["payload"] = payload
    with pytest.raises(QopsError, match=field):
        schemas.check("execute/request", message, "execute request")


def test_execute_reply_non_integer_count_is_refused(schemas: ProtocolSchemas) -> None:
    reply = {
        "session_id": SESSION,
        "status": "success",
        "payload": {"job_id": 1, "results": {"0": 1.5}},
    }
    assert not schemas.is_valid("execute/reply_success", reply)
