"""Console settings, its block, the credentials check, the bind rule and page addresses."""

from __future__ import annotations

import base64

import pytest
from pydantic import SecretStr, ValidationError

from qops.console.auth import (
    ConsoleAuth,
    UnauthenticatedBindError,
    check_bind,
    is_loopback,
)
from qops.console.settings import ConsoleSettings, prefect_ui_url_of
from qops.console_links import (
    dataset_url,
    entity_url,
    execution_url,
    markdown_link,
    parameter_url,
    prefect_flow_run_url,
)

_VARIABLES = (
    "QOPS_CONSOLE_TOKEN",
    "QOPS_CONSOLE_USER",
    "QOPS_CONSOLE_PASSWORD",
    "QOPS_CONSOLE_URL",
    "QOPS_PREFECT_UI_URL",
    "PREFECT_API_URL",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_console_settings_defaults_no_auth_no_links() -> None:
    settings = ConsoleSettings()
    assert not settings.auth_configured
    assert settings.console_url is None
    assert settings.prefect_ui_url is None
    assert settings.console_user == "qops"
    assert ConsoleAuth.from_settings(settings) is None


def test_console_settings_read_qops_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QOPS_CONSOLE_TOKEN", "s3cr3t-value")
    monkeypatch.setenv("QOPS_CONSOLE_URL", "http://qops.lab:8000/")
    monkeypatch.setenv("QOPS_PREFECT_UI_URL", "http://prefect.lab:4200")
    settings = ConsoleSettings()
    assert settings.auth_configured
    assert settings.console_url == "http://qops.lab:8000"
    assert settings.prefect_ui_url == "http://prefect.lab:4200"
    assert "s3cr3t-value" not in repr(settings)


def test_empty_secrets_configure_no_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QOPS_CONSOLE_TOKEN", "")
    monkeypatch.setenv("QOPS_CONSOLE_PASSWORD", "")
    assert not ConsoleSettings().auth_configured


def test_prefect_ui_url_defaults_to_prefect_api_url_minus_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4321/api")
    assert ConsoleSettings().prefect_ui_url == "http://127.0.0.1:4321"
    monkeypatch.setenv("QOPS_PREFECT_UI_URL", "https://prefect.lab")
    assert ConsoleSettings().prefect_ui_url == "https://prefect.lab"
    assert prefect_ui_url_of("http://h:1/api/") == "http://h:1"
    assert prefect_ui_url_of("") is None
    assert prefect_ui_url_of("https://api.prefect.cloud/api/accounts/a/workspaces/w") is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("qops.lab:8000", "http:// or https://"),
        ("ftp://qops.lab", "http:// or https://"),
        ("http://alice:secret@qops.lab", "must not hold credentials"),
        ("http://qops.lab/?token=x", "without a query"),
    ],
)
def test_console_url_malformed_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("QOPS_CONSOLE_URL", value)
    with pytest.raises(ValidationError, match="QOPS_CONSOLE_URL") as raised:
        ConsoleSettings()
    (error,) = raised.value.errors()
    assert message in error["msg"]
    assert "secret" not in error["msg"]  # what qops api serve prints


def test_console_block_to_settings_mirrors_the_settings() -> None:
    from blocks.console import QopsConsole

    block = QopsConsole(
        token=SecretStr("tok"), user="lab", password=SecretStr("pw"), console_url="http://q:1/"
    )
    settings = block.to_settings()
    assert settings.console_token is not None
    assert settings.console_token.get_secret_value() == "tok"
    assert settings.console_user == "lab"
    assert settings.console_url == "http://q:1"
    with pytest.raises(ValidationError, match="QOPS_CONSOLE_URL"):
        QopsConsole(console_url="q:1").to_settings()


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST", "::1", "[::1]"]
)
def test_loopback_hosts_are_loopback(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.2", "10.1.2.3", "qops.lab", ""])
def test_other_hosts_need_auth(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(
        UnauthenticatedBindError, match="QOPS_CONSOLE_TOKEN or QOPS_CONSOLE_PASSWORD"
    ):
        check_bind(host, None)
    check_bind(host, ConsoleAuth(token=SecretStr("t"), user="qops", password=None))


def test_auth_accepts_bearer_token_and_basic_password_only() -> None:
    auth = ConsoleAuth(token=SecretStr("tok"), user="qops", password=SecretStr("pw"))
    assert auth.accepts("Bearer tok")
    assert auth.accepts("bearer  tok ")
    assert auth.accepts(_basic("qops", "pw"))
    assert auth.accepts(_basic("qops", "tok"))  # a browser can use the token as password
    for header in (
        None,
        "",
        "Bearer",
        "Bearer tok2",
        "Bearer pw",
        "Token tok",
        _basic("other", "pw"),
        _basic("qops", "wrong"),
        "Basic not-base64!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
    ):
        assert not auth.accepts(header), header


def test_auth_password_only_challenges_basic_only() -> None:
    auth = ConsoleAuth(token=None, user="qops", password=SecretStr("pw"))
    assert auth.challenges() == ['Basic realm="qops", charset="UTF-8"']
    assert not auth.accepts("Bearer pw")


def test_page_addresses_quote_each_segment() -> None:
    base = "http://qops.lab:8000/"
    assert dataset_url(base, "4f1c") == "http://qops.lab:8000/console/datasets/4f1c"
    assert parameter_url(base, "t1", "Q0-Q1") == "http://qops.lab:8000/console/parameters/t1/Q0-Q1"
    assert entity_url(base, "t1:Q0:a/b?c#d") == (
        "http://qops.lab:8000/console/entities/t1%3AQ0%3Aa%2Fb%3Fc%23d"
    )
    assert execution_url(base, "run 1") == "http://qops.lab:8000/console/executions/run%201"


def test_markdown_link_escapes_text_and_leaves_plain_text_without_url() -> None:
    assert markdown_link("t1 | x", None) == "t1 | x"
    assert markdown_link("a]b|c", "http://q/x") == "[a\\]b\\|c](http://q/x)"
    assert markdown_link("p", "http://q/(x)") == "[p](http://q/(x%29)"


def test_prefect_flow_run_url_is_the_ui_flow_run_page() -> None:
    run = "0f8e3a52-1b7c-4d2e-9a57-3c0f5f0d2b61"
    assert prefect_flow_run_url("http://127.0.0.1:4321/", run) == (
        f"http://127.0.0.1:4321/runs/flow-run/{run}"
    )


def test_prefect_ui_url_not_derived_from_an_api_url_with_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://u:secret@prefect.lab:4200/api")
    assert ConsoleSettings().prefect_ui_url is None
