"""The block registrations the CLI saves blocks with are what the installed Prefect computes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from qops.cli.prefect_rest import REGISTRATIONS_FILE, load_registrations
from qops.qcodes.backend import SOURCE_BLOCK_TYPE_SLUG

ROOT = Path(__file__).resolve().parents[2]


def test_block_registrations_file_matches_installed_prefect_and_blocks() -> None:
    checked = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "prefect_block_registrations.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_block_registrations_hold_the_sync_source_block_with_its_checksum() -> None:
    registrations = load_registrations(REGISTRATIONS_FILE)
    source = registrations[SOURCE_BLOCK_TYPE_SLUG]
    assert source.slug == SOURCE_BLOCK_TYPE_SLUG
    assert source.checksum.startswith("sha256:")
    fields = source.block_schema["fields"]
    assert isinstance(fields, dict)
    properties = fields["properties"]
    assert isinstance(properties, dict)
    assert set(properties) == {
        "source_name",
        "backend",
        "database_path",
        "set_up",
        "static_attributes",
        "default_scope",
    }
