"""A configured MongoDB URL that is malformed or unreachable: one line, exit 2, quickly."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from qops.config import MongoSettings
from qops.errors import ConfigurationError, MongoUnavailableError
from qops.mongo import connect
from qops.process import free_port
from tests.cli import run_qops


@pytest.mark.parametrize("url", ["mongo://nowhere", "mongodb://", "not a url at all"])
def test_malformed_url_names_setting_exit_2(url: str) -> None:
    with pytest.raises(ConfigurationError, match="QOPS_MONGODB_URL"):
        connect(MongoSettings(mongodb_url=SecretStr(url)))
    result = run_qops("mongo", "status", env={"QOPS_MONGODB_URL": url})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "QOPS_MONGODB_URL" in lines[0]


def test_unreachable_url_fails_within_timeout_naming_url() -> None:
    url = f"mongodb://user:secret@127.0.0.1:{free_port()}/"
    started = time.monotonic()
    with pytest.raises(MongoUnavailableError) as caught:
        connect(MongoSettings(mongodb_url=SecretStr(url), mongodb_timeout_s=1.0))
    assert time.monotonic() - started < 5
    assert "user:***@127.0.0.1" in str(caught.value)
    assert "secret" not in str(caught.value)

    result = run_qops(
        "mongo", "status", env={"QOPS_MONGODB_URL": url, "QOPS_MONGODB_TIMEOUT_S": "1"}
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "did not answer" in lines[0]
    assert "Traceback" not in result.stderr
