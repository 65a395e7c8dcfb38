from pathlib import Path

import pytest

from qops.config import MongoSettings, QopsSettings, default_data_dir
from qops.errors import ConfigurationError, MongoUnavailableError
from qops.mongo import redact_url


def test_mongo_settings_defaults_embedded_database_qops(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QOPS_MONGODB_URL", "QOPS_MONGODB_DB", "QOPS_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = MongoSettings()
    assert settings.embedded
    assert settings.mongodb_db == "qops"
    assert settings.data_dir == default_data_dir()
    assert "qops" in str(default_data_dir())


def test_settings_read_qops_prefixed_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("QOPS_MONGODB_URL", "mongodb://db.lab:27017/")
    monkeypatch.setenv("QOPS_MONGODB_DB", "lab")
    monkeypatch.setenv("QOPS_DATA_DIR", str(tmp_path))
    settings = MongoSettings()
    assert not settings.embedded
    assert settings.mongodb_url is not None
    assert settings.mongodb_url.get_secret_value() == "mongodb://db.lab:27017/"
    assert settings.mongodb_db == "lab"
    assert QopsSettings().data_dir == tmp_path


def test_blank_url_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QOPS_MONGODB_URL", "  ")
    assert MongoSettings().embedded


def test_redact_url_hides_password_keeps_user() -> None:
    assert redact_url("mongodb://alice:s3cret@db:27017/x") == "mongodb://alice:***@db:27017/x"
    assert redact_url("mongodb+srv://bob:pw@c.example/") == "mongodb+srv://bob:***@c.example/"
    assert redact_url("mongodb://db:27017/") == "mongodb://db:27017/"


def test_error_messages_name_what_failed() -> None:
    error = ConfigurationError("QOPS_MONGODB_URL", "mongo://x", "bad scheme")
    assert str(error) == "QOPS_MONGODB_URL='mongo://x' is not usable: bad scheme"
    unavailable = MongoUnavailableError("mongodb://h:1/", "connection refused", 3.0)
    assert "mongodb://h:1/" in str(unavailable)
    assert "3 s" in str(unavailable)


def test_mongodb_block_without_data_dir_uses_the_workers_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from blocks.mongodb import MongoDBConnection

    monkeypatch.setenv("QOPS_DATA_DIR", str(tmp_path / "worker"))
    assert MongoDBConnection().to_settings().data_dir == tmp_path / "worker"
    own = MongoDBConnection(data_dir=str(tmp_path / "block")).to_settings()
    assert own.data_dir == tmp_path / "block"
