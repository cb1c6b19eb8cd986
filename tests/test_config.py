import pytest

from server.config import ConfigError, Mode, load_settings


def test_defaults_are_demo_sqlite_under_data_dir(tmp_path, monkeypatch):
    for key in list(__import__("os").environ):
        if key.startswith("ISOCHECK_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ISOCHECK_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.mode is Mode.demo
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    assert settings.effective_database_url == f"sqlite:///{tmp_path.resolve() / 'isocheck.db'}"
    # Demo mode invents secrets per process instead of shipping constants.
    assert len(settings.secret_key) >= 32
    assert load_settings().secret_key != settings.secret_key
    # ...but keeps its encryption key so stored images stay readable after a restart.
    assert load_settings().encryption_key == settings.encryption_key


def test_environment_is_read(monkeypatch, tmp_path):
    monkeypatch.setenv("ISOCHECK_TIMEZONE", "Asia/Bangkok")
    monkeypatch.setenv("ISOCHECK_PORT", "9001")
    monkeypatch.setenv("ISOCHECK_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.zone.key == "Asia/Bangkok"
    assert settings.port == 9001


def test_unknown_time_zone_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown time zone"):
        load_settings(timezone="Mars/Olympus_Mons", data_dir=tmp_path)


@pytest.mark.parametrize("key", ["", "dev", "change-me", "short-but-not-empty"])
def test_production_refuses_weak_secret_and_says_why(key, tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(
            mode="production",
            secret_key=key,
            data_dir=tmp_path,
            encryption_key="k",
            database_url="postgresql://db/isocheck",
        )
    assert "ISOCHECK_SECRET_KEY" in str(info.value)


def test_production_needs_encryption_key_and_database(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(mode="production", secret_key="s" * 40, data_dir=tmp_path)
    assert "ISOCHECK_ENCRYPTION_KEY" in str(info.value)
    assert "ISOCHECK_DATABASE_URL" in str(info.value)


def test_production_starts_with_real_secrets(tmp_path):
    settings = load_settings(
        mode="production",
        secret_key="s" * 40,
        encryption_key="k" * 44,
        database_url="postgresql://db/isocheck",
        data_dir=tmp_path,
    )
    assert settings.is_production
    assert not (tmp_path / "demo-encryption.key").exists()
