"""Authentication and the bind rule of ``qops api serve``, over real HTTP.

The server runs as the installed ``qops`` command in a subprocess on the embedded MongoDB,
bound to a non-loopback address of this machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qops.config import MongoSettings
from qops.process import free_port
from tests.cli import QOPS, run_qops

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


def _lan_address() -> str:
    """An IPv4 address of this machine that is not loopback (``0.0.0.0`` if it has none)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        listed = subprocess.run(
            ["hostname", "-I"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.split()
        for address in listed:
            parsed = ipaddress.ip_address(address)
            if parsed.version == 4 and not parsed.is_loopback:
                return address
    return "0.0.0.0"


LAN = _lan_address()
CONNECT = "127.0.0.1" if LAN == "0.0.0.0" else LAN


def _env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("QOPS_CONSOLE_", "PREFECT_API_URL"))
    }
    env.update(extra)
    return env


@contextlib.contextmanager
def _serving(host: str, env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """``qops api serve --host HOST`` on a free port; yields its base URL once it answers."""
    port = free_port(host)
    log = (tmp_path / "api.log").open("w")
    process = subprocess.Popen(
        [QOPS, "api", "serve", "--host", host, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://{CONNECT if host == LAN else host}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "api.log").read_text()
            try:
                httpx.get(f"{url}/", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, (tmp_path / "api.log").read_text()
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.mark.parametrize("host", [LAN, "0.0.0.0"])
def test_serve_on_non_loopback_without_auth_refuses_to_start_naming_the_settings(
    host: str, mongo_settings: MongoSettings
) -> None:
    result = run_qops("api", "serve", "--host", host, "--port", str(free_port()), env=_env())
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert host in lines[0]
    assert "QOPS_CONSOLE_TOKEN" in lines[0]
    assert "QOPS_CONSOLE_PASSWORD" in lines[0]


def test_serve_with_malformed_console_url_exits_2_naming_it(
    mongo_settings: MongoSettings,
) -> None:
    env = _env(QOPS_CONSOLE_URL="http://alice:secret@qops.lab")
    result = run_qops("api", "serve", "--port", str(free_port()), env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "QOPS_CONSOLE_URL" in result.stderr
    assert "secret" not in result.stderr


def test_serve_on_loopback_without_auth_answers_everyone(
    mongo_settings: MongoSettings, tmp_path: Path
) -> None:
    with _serving("127.0.0.1", _env(), tmp_path) as url:
        for path in PROTECTED:
            assert httpx.get(f"{url}{path}", timeout=10).status_code == 200, path


def test_serve_on_lan_address_with_auth_answers_401_without_and_200_with_credentials(
    mongo_settings: MongoSettings, tmp_path: Path
) -> None:
    env = _env(QOPS_CONSOLE_TOKEN=TOKEN, QOPS_CONSOLE_PASSWORD=PASSWORD)
    with _serving(LAN, env, tmp_path) as url:
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
    env = _env(QOPS_CONSOLE_PASSWORD=PASSWORD, QOPS_CONSOLE_USER="lab")
    with _serving("0.0.0.0", env, tmp_path) as url:
        denied = httpx.get(f"{url}/docs", timeout=10)
        assert denied.status_code == 401
        assert denied.headers.get_list("www-authenticate") == [
            'Basic realm="qops", charset="UTF-8"'
        ]
        assert httpx.get(f"{url}/docs", auth=("lab", PASSWORD)).status_code == 200
        assert httpx.get(f"{url}/docs", auth=("qops", PASSWORD)).status_code == 401
        bearer = httpx.get(f"{url}/docs", headers={"Authorization": f"Bearer {PASSWORD}"})
        assert bearer.status_code == 401
