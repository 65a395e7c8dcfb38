"""The UI of the server ``qops prefect start`` runs talks to that same server's API."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx

from tests.cli import run_qops


def test_prefect_start_ui_settings_api_url_is_the_servers_own_api(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env["QOPS_DATA_DIR"] = str(tmp_path)
    started = run_qops("prefect", "start", env=env, timeout=180)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        found = re.search(r"UI (http://\S+)\s+PREFECT_API_URL=(\S+)", started.stdout)
        assert found, started.stdout
        ui_url, api_url = found.groups()
        # A free port, not Prefect's default 4200, which the UI would otherwise call.
        assert api_url == f"{ui_url}/api"
        settings = httpx.get(f"{ui_url}/ui-settings", timeout=10)
        assert settings.status_code == 200, settings.text
        assert settings.json()["api_url"] == api_url
        assert httpx.get(f"{settings.json()['api_url']}/health", timeout=10).is_success
    finally:
        stopped = run_qops("prefect", "stop", env=env, timeout=60)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
