"""``qops provenance ...`` and ``qops api serve`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import jsonschema
import pytest
from prov.model import ProvDocument

from qops.process import free_port
from qops.provenance.repository import MongoProvenanceRepository
from tests.cli import QOPS, run_qops
from tests.integration.provenance.records import CHIP, PROJECT, make_record, record_chain

SCHEMA = Path(__file__).parents[3] / "schemas" / "prov-json" / "prov-json.schema.json"


@pytest.fixture
def seeded(
    repository: MongoProvenanceRepository, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    monkeypatch.setenv("QOPS_PROJECT_ID", PROJECT)
    record_chain(repository, "e1", 5.0e9)
    return record_chain(repository, "e2", 5.1e9)


def test_cli_history_json_and_table(seeded: dict[str, str]) -> None:
    result = run_qops("provenance", "history", "qubit_frequency", "Q0", "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["total_versions"] == 2
    assert [v["value"] for v in body["versions"]] == [5.1e9, 5.0e9]

    table = run_qops("provenance", "history", "qubit_frequency", "Q0")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:3] == ["version", "value", "unit"]
    assert "2 versions in all" in table.stdout


def test_cli_history_and_changes_of_one_chip(
    seeded: dict[str, str], repository: MongoProvenanceRepository
) -> None:
    repository.record(make_record("e3", "t-freq", {"qubit_frequency": 6e9}, chip_id="chip-b"))
    own = run_qops("provenance", "history", "qubit_frequency", "Q0", "--chip", CHIP, "--json")
    assert own.returncode == 0, own.stderr
    assert [v["version"] for v in json.loads(own.stdout)["versions"]] == [2, 1]
    other = run_qops("provenance", "history", "qubit_frequency", "Q0", "--chip", "chip-b", "--json")
    assert other.returncode == 0, other.stderr
    (first,) = json.loads(other.stdout)["versions"]
    assert (first["version"], first["previous_entity_id"]) == (1, None)
    changes = run_qops("provenance", "changes", "--chip", "chip-b", "--json")
    assert changes.returncode == 0, changes.stderr
    (change,) = json.loads(changes.stdout)["changes"]
    assert (change["value"], change["previous_value"]) == (6e9, None)


def test_cli_lineage_compare_and_export(seeded: dict[str, str], tmp_path: Path) -> None:
    lineage = run_qops("provenance", "lineage", seeded["t1"], "--max-depth", "2", "--json")
    assert lineage.returncode == 0, lineage.stderr
    nodes = {n["node_id"] for n in json.loads(lineage.stdout)["nodes"]}
    assert seeded["rabi_amplitude"] in nodes

    compare = run_qops("provenance", "compare", "e1", "e2")
    assert compare.returncode == 0, compare.stderr
    assert "qubit_frequency" in compare.stdout
    assert "1 unchanged" in compare.stdout

    out = tmp_path / "lineage.json"
    export = run_qops("provenance", "export", seeded["t1"], "--output", str(out))
    assert export.returncode == 0, export.stderr
    document = json.loads(out.read_text())
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    ProvDocument.deserialize(content=out.read_text(), format="json")


def test_cli_bad_input_one_line_error_exit_2(seeded: dict[str, str]) -> None:
    malformed = run_qops("provenance", "lineage", "not-an-id")
    assert malformed.returncode == 2
    assert malformed.stderr.strip().startswith("qops: error: entity id 'not-an-id' is malformed")
    unknown = run_qops("provenance", "compare", "e1", "nope")
    assert unknown.returncode == 2
    assert "no execution 'nope'" in unknown.stderr
    depth = run_qops("provenance", "impact", seeded["t1"], "--max-depth", "0")
    assert depth.returncode == 2
    assert "max_depth=0" in depth.stderr


def test_api_serve_answers_http_until_stopped(seeded: dict[str, str]) -> None:
    port = free_port()
    server = subprocess.Popen(
        [QOPS, "api", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        response = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/provenance/stats", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert response is not None, "server did not answer"
        assert response.status_code == 200
        assert response.json()["total_entities"] == 6
        page = httpx.get(f"http://127.0.0.1:{port}/console/datasets", timeout=30)
        assert page.status_code == 200
        assert '<p class="total" id="total">0 datasets</p>' in page.text
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_cli_check_reports_broken_invariants_and_repair_fixes_the_safe_ones(
    seeded: dict[str, str],
    repository: MongoProvenanceRepository,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("QOPS_DATA_DIR", str(tmp_path))  # this test's own outbox and journal
    clean = run_qops("provenance", "check", "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads(clean.stdout)["problems"] == []

    first_t1 = repository.history(PROJECT, "t1", "Q0", 10, CHIP)[0][-1].entity_id
    repository.versions.update_one({"entity_id": first_t1}, {"$set": {"valid_until": None}})
    orphan = seeded["rabi_amplitude"]
    repository.relations.delete_one({"relation_type": "wasGeneratedBy", "source_id": orphan})

    broken = run_qops("provenance", "check", "--json")
    assert broken.returncode == 1, broken.stderr
    problems = {(p["kind"], p["subject"]) for p in json.loads(broken.stdout)["problems"]}
    assert problems == {("open_predecessor", first_t1), ("orphan", orphan)}
    table = run_qops("provenance", "check")
    assert table.returncode == 1
    assert f"open_predecessor  {PROJECT}  {first_t1}" in table.stdout

    dry = run_qops("provenance", "repair", "--dry-run", "--json")
    body = json.loads(dry.stdout)
    assert [(a["kind"], a["subject"]) for a in body["actions"]] == [("open_predecessor", first_t1)]
    assert run_qops("provenance", "check").returncode == 1  # a dry run changes nothing

    fixed = run_qops("provenance", "repair")
    assert fixed.returncode == 1  # the orphan cannot be completed: no record of it here
    assert f"fixed open_predecessor  {first_t1}" in fixed.stdout
    assert "1 fixed; 1 left" in fixed.stdout
    after = json.loads(run_qops("provenance", "check", "--json").stdout)
    assert [(p["kind"], p["subject"]) for p in after["problems"]] == [("orphan", orphan)]
    again = json.loads(run_qops("provenance", "repair", "--json").stdout)
    assert again["actions"] == []  # idempotent
