"""qops judges every probe message as the protocol's v3 schemas do (same accept/reject)."""

from __future__ import annotations

import pytest

from qops.protocol.errors import ProtocolError
from qops.protocol.schemas import ProtocolSchemas, decode
from tests.unit.protocol.probes import PROBES, Probe


@pytest.fixture(scope="module")
def schemas() -> ProtocolSchemas:
    return ProtocolSchemas()


def verdict(schemas: ProtocolSchemas, probe: Probe) -> tuple[bool, str]:
    """Decode the wire text as qops does and check it; the verdict and the error, if any."""
    try:
        message = decode(probe.wire.encode(), probe.schema)
        schemas.check(probe.schema, message, probe.schema)
    except ProtocolError as e:
        return False, str(e)
    return True, ""


def test_probe_table_covers_every_meta_schema_both_ways() -> None:
    ids = [probe.id for probe in PROBES]
    assert len(ids) == len(set(ids))
    for schema in {probe.schema for probe in PROBES}:
        assert {probe.valid for probe in PROBES if probe.schema == schema} == {True, False}


@pytest.mark.parametrize("probe", PROBES, ids=[probe.id for probe in PROBES])
def test_probe_verdict_matches_protocol_schemas(schemas: ProtocolSchemas, probe: Probe) -> None:
    valid, error = verdict(schemas, probe)
    assert valid == probe.valid, error or "accepted"


@pytest.mark.parametrize(
    "probe", [p for p in PROBES if not p.valid], ids=[p.id for p in PROBES if not p.valid]
)
def test_invalid_probe_error_names_message(schemas: ProtocolSchemas, probe: Probe) -> None:
    _, error = verdict(schemas, probe)
    assert error.startswith(f"invalid {probe.schema}")
