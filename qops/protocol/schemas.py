"""Loading the protocol's JSON Schemas and checking messages against them.

The schema files live in the top-level ``schemas`` package (``schemas/<command>/...``), the
single source of truth; they are package data, so the same files are read from a source
checkout and from an installed wheel. Validators are built once per process
(:func:`protocol_schemas`) and reused for every message.

Also here: the byte-level codec. Messages are single-frame strict JSON (RFC 8259: no NaN or
Infinity) of at most a capped size.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from referencing import Registry, Resource
from referencing._core import Resolver

from qops.protocol.compiled import compile_schema
from qops.protocol.errors import MessageTooLargeError, ProtocolError
from qops.protocol.messages import JsonObject

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Cap on the size of one message (16 MiB); larger messages are refused unread."""

SCHEMA_NAMES = (
    "base/request",
    "base/reply_success",
    "base/reply_failure",
    "get_static/request",
    "get_static/reply_success",
    "get_static/reply_failure",
    "get_dynamic/request",
    "get_dynamic/reply_success",
    "get_dynamic/reply_failure",
    "publish_state/message",
)
"""Every schema of the protocol, as ``<directory>/<name>`` without ``.schema.json``."""


def schema_root() -> Traversable:
    """Return the directory holding the schema files (the ``schemas`` package)."""
    return resources.files("schemas")


class ProtocolSchemas:
    """Compiled validators for every schema of the protocol.

    Args:
        root: Directory holding ``<directory>/<name>.schema.json``; default the installed
            ``schemas`` package.

    Raises:
        ProtocolError: A schema file is missing, unreadable or not a valid schema.
    """

    def __init__(self, root: Traversable | None = None) -> None:
        root = root if root is not None else schema_root()
        documents: dict[str, JsonObject] = {}
        for name in SCHEMA_NAMES:
            file = root.joinpath(*f"{name}.schema.json".split("/"))
            try:
                document = json.loads(file.read_text(encoding="utf-8"))
                Draft202012Validator.check_schema(document)
            except (OSError, ValueError) as e:
                raise ProtocolError(f"schema {name}", f"cannot load {file}: {e}") from e
            except SchemaError as e:
                raise ProtocolError(f"schema {name}", f"{file} is not a valid schema: {e}") from e
            documents[name] = document
        registry: Registry[Any] = Registry().with_resources(
            (str(doc["$id"]), Resource.from_contents(doc)) for doc in documents.values()
        )
        self._validators: dict[str, Draft202012Validator] = {}
        self._predicates: dict[str, Callable[[object], bool]] = {}
        for name, doc in documents.items():
            # Every $ref is inlined once here, so checking a message never resolves one.
            inlined = _inlined(doc, registry.resolver(str(doc["$id"])))
            assert isinstance(inlined, dict)
            validator = Draft202012Validator(inlined)
            self._validators[name] = validator
            self._predicates[name] = compile_schema(inlined) or validator.is_valid

    def check(self, name: str, message: object, what: str) -> None:
        """Check ``message`` against the schema ``name``.

        Args:
            name: A schema name from :data:`SCHEMA_NAMES`.
            message: The decoded message.
            what: How to call the message in an error.

        Raises:
            ProtocolError: The message does not match, naming the first offending field.
        """
        if self._predicates[name](message):
            return
        error = best_match(self._validators[name].iter_errors(message))
        if error is not None:
            raise ProtocolError(what, _describe(error)) from None

    def is_valid(self, name: str, message: object) -> bool:
        """Whether ``message`` matches the schema ``name``."""
        return self._predicates[name](message)

    def reference_is_valid(self, name: str, message: object) -> bool:
        """Whether ``message`` matches, as decided by ``jsonschema`` itself (the slow path
        :meth:`is_valid` must agree with)."""
        return bool(self._validators[name].is_valid(message))


def _inlined(node: object, resolver: Resolver[Any]) -> object:
    """Return ``node`` with every ``$ref`` replaced by what it refers to (no cycles allowed)."""
    if isinstance(node, list):
        return [_inlined(item, resolver) for item in node]
    if not isinstance(node, dict):
        return node
    if "$id" in node:
        resolver = resolver.in_subresource(Resource.from_contents(node))
    result: dict[str, object] = {
        key: _inlined(value, resolver) for key, value in node.items() if key != "$ref"
    }
    if "$ref" in node:
        resolved = resolver.lookup(str(node["$ref"]))
        target = _inlined(resolved.contents, resolved.resolver)
        if not result:
            return target
        all_of = result.setdefault("allOf", [])
        assert isinstance(all_of, list)
        all_of.append(target)
    return result


def _describe(error: ValidationError) -> str:
    where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
    message = error.message
    if len(message) > 300:
        message = message[:300] + "..."
    return f"{where}: {message}"


@functools.cache
def protocol_schemas() -> ProtocolSchemas:
    """Return the process's validators for the installed schemas, built on first use."""
    return ProtocolSchemas()


def decode(frame: bytes, what: str, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> JsonObject:
    """Decode one message frame into a JSON object.

    Raises:
        MessageTooLargeError: The frame is longer than ``max_bytes``.
        ProtocolError: The frame is empty, not UTF-8, not strict JSON or not an object.
    """
    if len(frame) > max_bytes:
        raise MessageTooLargeError(what, len(frame), max_bytes)
    if not frame:
        raise ProtocolError(what, "empty message")
    try:
        # orjson parses strict JSON only (no NaN or Infinity) and is several times faster
        # than the json module on large get_dynamic answers.
        decoded = orjson.loads(frame)
    except orjson.JSONDecodeError as e:
        reason = "not UTF-8 text" if "UTF-8" in str(e) else "not valid JSON"
        raise ProtocolError(what, f"{reason}: {e}") from e
    if not isinstance(decoded, dict):
        raise ProtocolError(what, f"expected a JSON object, found {type(decoded).__name__}")
    return decoded


def encode(message: JsonObject) -> bytes:
    """Encode a message as one strict-JSON frame (NaN and Infinity are refused).

    Raises:
        ProtocolError: The message holds a value JSON cannot carry.
    """
    try:
        return json.dumps(message, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as e:
        raise ProtocolError("outgoing message", f"cannot be encoded as JSON: {e}") from e
