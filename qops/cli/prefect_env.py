"""Which Prefect API a one-off ``qops`` command uses, found without importing Prefect.

Importing Prefect takes seconds, and a Prefect client without ``PREFECT_API_URL`` starts a
temporary server (tens of seconds). So the CLI decides first, from the environment, the
active Prefect profile and the local server qops manages (:mod:`qops.cli.prefect_server`),
whether there is an API to talk to; the commands then either use it or do their work
without Prefect. This module itself imports nothing heavy: ``qops.cli.main`` calls
:func:`apply_quiet_defaults` for every command.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

QUIET_DEFAULTS: dict[str, str] = {
    # The Prefect server's telemetry service (what prints "Failed to send telemetry" on a
    # machine without internet); the SDK's analytics also ask the server for this setting.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # The SDK's own analytics check this standard variable before anything else.
    "DO_NOT_TRACK": "1",
}
"""Settings the CLI sets for its process (and children) unless the user chose a value."""

NO_API_HINT = "start one with `qops prefect start` (or set PREFECT_API_URL)"
"""How to get a Prefect API, for the messages of commands that ran without one."""


@dataclass(frozen=True)
class PrefectApi:
    """A Prefect API the CLI can use."""

    url: str
    """The value for ``PREFECT_API_URL``."""
    origin: Literal["configured", "local"]
    """``configured``: from ``PREFECT_API_URL`` or the profile; ``local``: qops's server."""

    def describe(self) -> str:
        """Say which API this is, for the user."""
        where = "configured" if self.origin == "configured" else "local qops"
        return f"{where} Prefect API {self.url}"


def _active_profile(environ: Mapping[str, str]) -> Mapping[str, object]:
    """The settings of the active Prefect profile, as Prefect finds it (empty if none)."""
    home = Path(environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    path = Path(environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    name = environ.get("PREFECT_PROFILE") or profiles.get("active")
    settings = profiles.get("profiles", {}).get(name) if isinstance(name, str) else None
    return settings if isinstance(settings, dict) else {}


def apply_quiet_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Turn Prefect's telemetry off for this process, unless the user set it.

    A value in the environment or in the active Prefect profile is the user's choice and
    is kept.
    """
    env = os.environ if environ is None else environ
    profile = _active_profile(env)
    for key, value in QUIET_DEFAULTS.items():
        if key not in env and key not in profile:
            env[key] = value


def configured_api_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``PREFECT_API_URL`` from the environment, else from the active profile; ``None``."""
    env = os.environ if environ is None else environ
    if "PREFECT_API_URL" in env:
        return env["PREFECT_API_URL"] or None
    url = _active_profile(env).get("PREFECT_API_URL")
    return url if isinstance(url, str) and url else None


def api_credentials(environ: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """``PREFECT_API_KEY`` and ``PREFECT_API_AUTH_STRING``, from the environment or profile.

    What Prefect's own client sends: the key as a bearer token, the auth string
    (``user:password``) as HTTP basic auth.
    """
    env = os.environ if environ is None else environ
    profile = _active_profile(env)
    found: list[str | None] = []
    for key in ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"):
        value = env[key] if key in env else profile.get(key)
        found.append(value if isinstance(value, str) and value else None)
    return found[0], found[1]


def _answers(api_url: str, timeout_s: float) -> bool:
    """Whether anything answers HTTP at the API (an auth error still means it is there)."""
    import httpx  # only commands that look for an API pay for it

    try:
        httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return True


@dataclass(frozen=True)
class NoPrefectApi:
    """No Prefect API can be used, and why."""

    reason: str


def find_prefect_api(data_dir: Path, timeout_s: float = 2.0) -> PrefectApi | NoPrefectApi:
    """Return the API a command should use: the configured one, else the local qops server.

    A configured API that does not answer within ``timeout_s`` counts as none (the command
    then says so). Nothing is started.
    """
    from qops.cli.prefect_server import LocalPrefectServer

    url = configured_api_url()
    if url is not None:
        if _answers(url, timeout_s):
            return PrefectApi(url, "configured")
        return NoPrefectApi(f"the configured Prefect API {url} does not answer")
    server = LocalPrefectServer(data_dir).status()
    if server is None:
        return NoPrefectApi(
            "no Prefect API: PREFECT_API_URL is not set and the local qops "
            "Prefect server does not run"
        )
    return PrefectApi(server.api_url, "local")


def use_prefect_api(api: PrefectApi) -> None:
    """Point Prefect, when it is imported later in this process, at ``api``."""
    os.environ["PREFECT_API_URL"] = api.url
