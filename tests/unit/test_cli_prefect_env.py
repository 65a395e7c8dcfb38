"""How the CLI finds a Prefect API and turns Prefect's telemetry off (no Prefect imported)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qops.cli.prefect_env import (
    NoPrefectApi,
    api_credentials,
    apply_quiet_defaults,
    configured_api_url,
    find_prefect_api,
)


def _profile(home: Path, text: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "profiles.toml").write_text(text)
    return {"PREFECT_HOME": str(home)}


def test_quiet_defaults_turn_telemetry_off_when_the_user_chose_nothing(tmp_path: Path) -> None:
    env = {"PREFECT_HOME": str(tmp_path / "none")}
    apply_quiet_defaults(env)
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert env["DO_NOT_TRACK"] == "1"


def test_quiet_defaults_keep_the_users_environment_and_profile_choice(tmp_path: Path) -> None:
    env = _profile(
        tmp_path / "home",
        'active = "lab"\n[profiles.lab]\nPREFECT_SERVER_ANALYTICS_ENABLED = "true"\n',
    )
    env["DO_NOT_TRACK"] = "0"
    apply_quiet_defaults(env)
    assert "PREFECT_SERVER_ANALYTICS_ENABLED" not in env  # the profile's value applies
    assert env["DO_NOT_TRACK"] == "0"


def test_configured_api_url_from_environment_else_active_profile(tmp_path: Path) -> None:
    env = _profile(
        tmp_path / "home",
        'active = "lab"\n[profiles.lab]\nPREFECT_API_URL = "http://prefect.lab:4200/api"\n'
        '[profiles.other]\nPREFECT_API_URL = "http://other:4200/api"\n',
    )
    assert configured_api_url(env) == "http://prefect.lab:4200/api"
    assert configured_api_url({**env, "PREFECT_PROFILE": "other"}) == "http://other:4200/api"
    assert configured_api_url({**env, "PREFECT_API_URL": "http://env/api"}) == "http://env/api"
    assert configured_api_url({**env, "PREFECT_API_URL": ""}) is None


def test_find_prefect_api_without_any_server_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_API_URL", "")
    found = find_prefect_api(tmp_path / "data")
    assert isinstance(found, NoPrefectApi)
    assert "local qops Prefect server does not run" in found.reason
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens
    found = find_prefect_api(tmp_path / "data", timeout_s=0.5)
    assert isinstance(found, NoPrefectApi)
    assert "http://127.0.0.1:9/api does not answer" in found.reason


def test_api_credentials_from_environment_first_then_profile(tmp_path: Path) -> None:
    env = _profile(
        tmp_path / "home",
        'active = "lab"\n[profiles.lab]\nPREFECT_API_KEY = "from-profile"\n'
        'PREFECT_API_AUTH_STRING = "admin:pass"\n',
    )
    assert api_credentials(env) == ("from-profile", "admin:pass")
    env["PREFECT_API_KEY"] = "from-env"
    assert api_credentials(env) == ("from-env", "admin:pass")
    assert api_credentials({"PREFECT_HOME": str(tmp_path / "none")}) == (None, None)
