"""``qops api serve --block NAME`` takes its credentials from a saved ``qops-console`` block."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from pydantic import SecretStr

from blocks.console import QopsConsole
from qops.config import MongoSettings
from tests.cli import run_qops
from tests.integration.console.serving import LAN, console_env, serving

TOKEN = "block-t0ken"


def test_serve_with_console_block_on_lan_address_requires_the_blocks_token(
    prefect_api: str, mongo_settings: MongoSettings, tmp_path: Path
) -> None:
    QopsConsole(token=SecretStr(TOKEN)).save("lab-console", overwrite=True)
    env = console_env(PREFECT_API_URL=os.environ["PREFECT_API_URL"])
    with serving(LAN, env, tmp_path, "--block", "lab-console") as url:
        assert httpx.get(f"{url}/openapi.json", timeout=10).status_code == 401
        answer = httpx.get(f"{url}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200
        assert "/provenance/stats" in answer.json()["paths"]


def test_serve_with_unknown_console_block_exits_2_naming_it(
    prefect_api: str, mongo_settings: MongoSettings
) -> None:
    env = console_env(PREFECT_API_URL=os.environ["PREFECT_API_URL"])
    result = run_qops("api", "serve", "--block", "no-such-console", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no-such-console" in result.stderr
    assert "Traceback" not in result.stderr
