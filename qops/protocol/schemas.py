"""Loading the protocol's JSON Schemas and checking messages against them.

The schema files live in the top-level ``schemas`` package (``schemas/<command>/...``), the
single source of truth; they are package data, so the same files are read from a source
checkout and from an installed wheel. Validators are built once per process
(:func:`protocol_schemas`) and reused for every message: ``jsonschema_rs`` gives the verdict
(a compiled validator, about ten times faster than ``jsonschema`` on a 1 000-sample reply),
``jsonschema`` writes the error message of an invalid message and has the last word where
the two differ (only on NaN and ±Infinity, which ``jsonschema_rs`` does not count as numbers
but Python's ``json`` reads and writes).

Also here: the byte-level codec. Messages are single-frame JSON of at most a capped size.
The protocol's messages are written by Python's ``json.dumps``, so ``NaN``, ``Infinity``
and ``-Infinity`` are read like any number; qops itself writes strict JSON (RFC 8259).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import jsonschema_rs
import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from referencing import Registry, Resource
from referencing._core import Resolver

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
    "initialize/request",
    "initialize/reply_success",
    "initialize/reply_failure",
    "execute/request",
    "execute/reply_success",
    "execute/reply_failure",
    "terminate/request",
    "terminate/reply_success",
    "terminate/reply_failure",
    "publish_state/message",
)
"""Every schema of the protocol, as ``<directory>/<name>`` without ``.schema.json``."""


def schema_root() -> Traversable:
    """Return the directory holding the schema files (the ``schemas`` package)."""
    return resources.files("schemas")


class ProtocolSchemas:
    """Validators for every schema of the protocol.

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
        self._fast: dict[str, Callable[[object], bool]] = {}
        for name, doc in documents.items():
            # Every $ref is inlined once here, so neither validator ever resolves one (the
            # $ids are names, not addresses to fetch).
            inlined = _inlined(doc, registry.resolver(str(doc["$id"])))
            assert isinstance(inlined, dict)
            self._validators[name] = Draft202012Validator(inlined)
            self._fast[name] = jsonschema_rs.Draft202012Validator(inlined).is_valid

    def check(self, name: str, message: object, what: str) -> None:
        """Check ``message`` against the schema ``name``.

        Args:
            name: A schema name from :data:`SCHEMA_NAMES`.
            message: The decoded message.
            what: How to call the message in an error.

        Raises:
            ProtocolError: The message does not match, naming the first offending field.
        """
        if self._fast[name](message):
            return
        error = best_match(self._validators[name].iter_errors(message))
        if error is not None:
            raise ProtocolError(what, _describe(error)) from None

    def has(self, name: str) -> bool:
        """Whether there is a schema ``name``."""
        return name in self._fast

    def is_valid(self, name: str, message: object) -> bool:
        """Whether ``message`` matches the schema ``name``."""
        # jsonschema_rs refuses NaN and ±Infinity as numbers; jsonschema, like the
        # protocol's Python tooling, accepts them: a refusal is confirmed by jsonschema.
        return self._fast[name](message) or bool(self._validators[name].is_valid(message))

    def fast_is_valid(self, name: str, message: object) -> bool:
        """The verdict of ``jsonschema_rs`` alone (what :meth:`is_valid` tries first)."""
        return self._fast[name](message)

    def reference_is_valid(self, name: str, message: object) -> bool:
        """The verdict of ``jsonschema`` alone (the reference :meth:`is_valid` agrees with)."""
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

    JSON as Python's ``json`` module reads it: strict JSON plus ``NaN``, ``Infinity`` and
    ``-Infinity``, which the protocol's reference implementation writes. Integers beyond
    64 bits are read as the nearest float.

    Raises:
        MessageTooLargeError: The frame is longer than ``max_bytes``.
        ProtocolError: The frame is empty, not UTF-8, not JSON or not an object.
    """
    if len(frame) > max_bytes:
        raise MessageTooLargeError(what, len(frame), max_bytes)
    if not frame:
        raise ProtocolError(what, "empty message")
    try:
        # orjson is several times faster than the json module on large get_dynamic
        # answers, but reads strict JSON only: json reads what it refuses (NaN, Infinity).
        decoded = orjson.loads(frame)
    except orjson.JSONDecodeError as e:
        decoded = _decode_lenient(frame, what, e)
    if not isinstance(decoded, dict):
        raise ProtocolError(what, f"expected a JSON object, found {type(decoded).__name__}")
    return decoded


def _decode_lenient(frame: bytes, what: str, strict_error: orjson.JSONDecodeError) -> object:
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtocolError(what, f"not UTF-8 text: {e}") from e
    try:
        return json.loads(text)
    except ValueError:
        # orjson's message names the position; json's would say the same thing.
        raise ProtocolError(what, f"not valid JSON: {strict_error}") from strict_error


def encode(message: JsonObject) -> bytes:
    """Encode a message as one strict-JSON frame (NaN and Infinity are refused).

    Raises:
        ProtocolError: The message holds a value JSON cannot carry.
    """
    try:
        return json.dumps(message, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as e:
        raise ProtocolError("outgoing message", f"cannot be encoded as JSON: {e}") from e
