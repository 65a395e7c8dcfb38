"""``qops api serve`` as a user runs it, in a subprocess, on an address of this machine."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from qops.process import free_port
from tests.cli import QOPS


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


def console_env(**extra: str) -> dict[str, str]:
    """This environment without console or Prefect API settings, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("QOPS_CONSOLE_", "PREFECT_API_URL"))
    }
    env.update(extra)
    return env


@contextlib.contextmanager
def serving(host: str, env: dict[str, str], tmp_path: Path, *options: str) -> Iterator[str]:
    """``qops api serve --host HOST [OPTIONS]`` on a free port; yields its base URL once it
    answers (anything, a 401 too)."""
    port = free_port(host)
    log = (tmp_path / "api.log").open("w")
    process = subprocess.Popen(
        [QOPS, "api", "serve", "--host", host, "--port", str(port), *options],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    connect = {LAN: CONNECT, "0.0.0.0": "127.0.0.1"}.get(host, host)
    url = f"http://{connect}:{port}"
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
