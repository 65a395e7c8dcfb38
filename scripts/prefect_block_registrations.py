"""Write ``qops/cli/prefect_blocks.json``: what Prefect registers for the blocks the CLI saves.

Usage: .venv/bin/python scripts/prefect_block_registrations.py [--check]

The CLI saves blocks through the REST API without importing Prefect
(:mod:`qops.cli.prefect_rest`); it registers each block's type and schema from this file.
Run this after changing a block class the CLI saves (or upgrading Prefect); ``--check``
exits 1 when the file is out of date (a test does the same).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefect.blocks.core import Block

from blocks.sync import QCoDeSSyncSource
from qops.cli.prefect_rest import REGISTRATIONS_FILE

CLI_BLOCKS: tuple[type[Block], ...] = (QCoDeSSyncSource,)
"""The block classes the CLI saves."""


def registrations() -> dict[str, dict[str, object]]:
    """Return the registration payloads Prefect computes for :data:`CLI_BLOCKS`."""
    out: dict[str, dict[str, object]] = {}
    for block in CLI_BLOCKS:
        block_type = block._to_block_type().model_dump(
            mode="json",
            include={
                "name",
                "slug",
                "logo_url",
                "documentation_url",
                "description",
                "code_example",
            },
        )
        # The block type id is not part of the checksum; the server's id is used instead.
        schema = block._to_block_schema(block_type_id=uuid.uuid4()).model_dump(
            mode="json", include={"fields", "capabilities", "version", "checksum"}
        )
        out[block.get_block_type_slug()] = {"block_type": block_type, "block_schema": schema}
    return out


def render() -> str:
    """The file's text."""
    return json.dumps(registrations(), indent=2) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check the file is current")
    args = parser.parse_args()
    text = render()
    if args.check:
        if REGISTRATIONS_FILE.read_text() != text:
            sys.exit(f"{REGISTRATIONS_FILE} is out of date: run {Path(__file__).name}")
        return
    REGISTRATIONS_FILE.write_text(text)


if __name__ == "__main__":
    main()
