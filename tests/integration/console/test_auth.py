"""Authentication and the bind rule of ``qops api serve``, over real HTTP.

The server runs as the installed ``qops`` command in a subprocess on the embedded MongoDB,
bound to a non-loopback address of this machine.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from qops.config import MongoSettings
from qops.process import free_port
from tests.cli import run_qops
from tests.integration.console.serving import LAN, console_env, serving

TOKEN = "t0ken-of-the-lab"
PASSWORD = "pa55-of-the-lab"

PROTECTED = [
    "/",
    "/provenance/stats",
    "/docs",
    "/openapi.json",
    "/static/qops.css",
    "/static/vendor/plotly/plotly.min.js",
]
"""A page, the API, its documentation and schema, and static files."""


@pytest.fixture(autouse=True)
def _no_console_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests choose the credentials; none come from the environment they run in."""
    for name in ("QOPS_CONSOLE_TOKEN", "QOPS_CONSOLE_PASSWORD", "QOPS_CONSOLE_USER"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("host", [LAN, "0.0.0.0"])
def test_serve_on_non_loopback_without_auth_refuses_to_start_naming_the_settings(
    host: str, mongo_settings: MongoSettings
) -> None:
    result = run_qops("api", "serve", "--host", host, "--port", str(free_port()), env=console_env())
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert host in lines[0]
    assert "QOPS_CONSOLE_TOKEN" in lines[0]
    assert "QOPS_CONSOLE_PASSWORD" in lines[0]


def test_serve_with_malformed_console_url_exits_2_naming_it(
    mongo_settings: MongoSettings,
) -> None:
    env = console_env(QOPS_CONSOLE_URL="http://alice:secret@qops.lab")
    result = run_qops("api", "serve", "--port", str(free_port()), env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "QOPS_CONSOLE_URL" in result.stderr
    assert "secret" not in result.stderr


def test_serve_on_loopback_without_auth_answers_everyone(
    mongo_settings: MongoSettings, tmp_path: Path
) -> None:
    with serving("127.0.0.1", console_env(), tmp_path) as url:
        for path in PROTECTED:
            assert httpx.get(f"{url}{path}", timeout=10).status_code == 200, path


def test_serve_on_lan_address_with_auth_answers_401_without_and_200_with_credentials(
    mongo_settings: MongoSettings, tmp_path: Path
) -> None:
    env = console_env(QOPS_CONSOLE_TOKEN=TOKEN, QOPS_CONSOLE_PASSWORD=PASSWORD)
    with serving(LAN, env, tmp_path) as url:
        for path in PROTECTED:
            denied = httpx.get(f"{url}{path}", timeout=10)
            assert denied.status_code == 401, path
            challenges = denied.headers.get_list("www-authenticate")
            assert any(c.startswith("Basic ") for c in challenges), challenges
            assert any(c.startswith("Bearer ") for c in challenges), challenges
            assert TOKEN not in denied.text
            assert PASSWORD not in denied.text
            # The security headers wrap the 401 as well.
            assert "content-security-policy" in denied.headers

            bearer = httpx.get(f"{url}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
            assert bearer.status_code == 200, (path, bearer.text[:200])
            basic = httpx.get(f"{url}{path}", auth=("qops", PASSWORD), timeout=10)
            assert basic.status_code == 200, path
        # Even a path that does not exist is answered 401, not 404: nothing is disclosed.
        assert httpx.get(f"{url}/console/no-such-page").status_code == 401
        assert httpx.get(f"{url}/console/no-such-page", auth=("qops", TOKEN)).status_code == 404
        # Wrong credentials, and secrets offered in the URL, are refused.
        assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert httpx.get(url, auth=("qops", "nope")).status_code == 401
        assert httpx.get(url, auth=("someone", PASSWORD)).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Basic %%%"}).status_code == 401
        assert httpx.get(f"{url}/?token={TOKEN}").status_code == 401
        assert httpx.get(f"{url}/provenance/stats?access_token={TOKEN}").status_code == 401


def test_serve_with_password_only_takes_basic_and_challenges_basic_only(
    mongo_settings: MongoSettings, tmp_path: Path
) -> None:
    env = console_env(QOPS_CONSOLE_PASSWORD=PASSWORD, QOPS_CONSOLE_USER="lab")
    with serving("0.0.0.0", env, tmp_path) as url:
        denied = httpx.get(f"{url}/docs", timeout=10)
        assert denied.status_code == 401
        assert denied.headers.get_list("www-authenticate") == [
            'Basic realm="qops", charset="UTF-8"'
        ]
        assert httpx.get(f"{url}/docs", auth=("lab", PASSWORD)).status_code == 200
        assert httpx.get(f"{url}/docs", auth=("qops", PASSWORD)).status_code == 401
        bearer = httpx.get(f"{url}/docs", headers={"Authorization": f"Bearer {PASSWORD}"})
        assert bearer.status_code == 401
