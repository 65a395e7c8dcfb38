"""Settings of the console server and of the links other components make to it.

Environment variables (prefix ``QOPS_``): ``QOPS_CONSOLE_TOKEN``, ``QOPS_CONSOLE_USER``,
``QOPS_CONSOLE_PASSWORD``, ``QOPS_CONSOLE_URL`` and ``QOPS_PREFECT_UI_URL``. The Prefect
block ``qops-console`` (``blocks/console.py``) mirrors them.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CONSOLE_USER = "qops"
"""The user name HTTP Basic authentication expects unless ``QOPS_CONSOLE_USER`` says."""


def _http_base_url(value: str | None, name: str) -> str | None:
    """``value`` without a trailing slash, checked to be an ``http(s)`` URL with a host."""
    if value is None or not value.strip():
        return None
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an http:// or https:// URL with a host, got {value!r}")
    if parts.username or parts.password:
        # Credentials never travel in a URL, nor in the message that refuses one.
        shown = parts._replace(netloc=f"***@{parts.netloc.rpartition('@')[2]}").geturl()
        raise ValueError(f"{name} must not hold credentials: {shown!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} is a base URL, without a query or a fragment: {value!r}")
    return value


def prefect_ui_url_of(api_url: str | None) -> str | None:
    """The Prefect UI address of a self-hosted server's ``PREFECT_API_URL`` (minus ``/api``).

    ``None`` for an API URL that does not end in ``/api`` (Prefect Cloud's, for one), whose
    UI is elsewhere: set ``QOPS_PREFECT_UI_URL`` then.
    """
    url = (api_url or "").strip().rstrip("/")
    if not url.endswith("/api"):
        return None
    return url.removesuffix("/api")


def _secret_set(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value())


class ConsoleSettings(BaseSettings):
    """Who may use the console server and where the console and the Prefect UI are.

    Attributes:
        console_token: Bearer token every request must carry (``Authorization: Bearer``).
        console_user: User name for HTTP Basic authentication with ``console_password``.
        console_password: Password for HTTP Basic authentication (browsers prompt for it).
        console_url: Public base URL of the console (``http://qops.lab:8000``), used for
            links from Prefect artifacts; unset: the artifacts carry no links.
        prefect_ui_url: Base URL of the Prefect UI (its flow runs are linked from the
            console); default: ``PREFECT_API_URL`` minus ``/api`` when it ends in ``/api``.
    """

    model_config = SettingsConfigDict(env_prefix="QOPS_", extra="ignore")

    console_token: SecretStr | None = Field(
        default=None, description="Bearer token the console server requires; unset: none."
    )
    console_user: str = Field(
        default=DEFAULT_CONSOLE_USER,
        min_length=1,
        description="User name of HTTP Basic authentication with console_password.",
    )
    console_password: SecretStr | None = Field(
        default=None, description="Password (HTTP Basic) the console server requires."
    )
    console_url: str | None = Field(
        default=None, description="Public base URL of the console, for links to its pages."
    )
    prefect_ui_url: str | None = Field(
        default=None, description="Base URL of the Prefect UI; default PREFECT_API_URL - /api."
    )

    @field_validator("console_url")
    @classmethod
    def _check_console_url(cls, value: str | None) -> str | None:
        return _http_base_url(value, "QOPS_CONSOLE_URL")

    @field_validator("prefect_ui_url")
    @classmethod
    def _check_prefect_ui_url(cls, value: str | None) -> str | None:
        return _http_base_url(value, "QOPS_PREFECT_UI_URL")

    @model_validator(mode="after")
    def _derive_prefect_ui_url(self) -> ConsoleSettings:
        if self.prefect_ui_url is None:
            try:
                derived = _http_base_url(
                    prefect_ui_url_of(os.environ.get("PREFECT_API_URL")), "PREFECT_API_URL"
                )
            except ValueError:
                derived = None  # not a base for links (credentials, odd scheme): no links
            self.prefect_ui_url = derived
        return self

    @property
    def auth_configured(self) -> bool:
        """Whether a token or a password is set (then every request must carry it)."""
        return _secret_set(self.console_token) or _secret_set(self.console_password)
