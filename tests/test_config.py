import pytest
from cryptography.fernet import Fernet

from server.config import ConfigError, Mode, load_settings

GOOD_SECRET = "Zq3v-9kLx_T2mWp8rB4nYc7HdJ6sFg1aUe0oVi5tKhQwRzXyNbM"
GOOD_FERNET = Fernet.generate_key().decode()


def test_defaults_are_demo_sqlite_under_data_dir(tmp_path, monkeypatch):
    for key in list(__import__("os").environ):
        if key.startswith("ISOCHECK_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ISOCHECK_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.mode is Mode.demo
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    assert settings.effective_database_url == f"sqlite:///{tmp_path.resolve() / 'isocheck.db'}"
    # Demo mode invents secrets instead of shipping constants, once per data directory (every
    # gunicorn worker must sign and check the same staff tokens: issue 13, finding 9)...
    assert len(settings.secret_key) >= 32
    assert load_settings().secret_key == settings.secret_key
    assert (tmp_path / "demo-secret.key").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("ISOCHECK_DATA_DIR", str(tmp_path / "other"))
    assert load_settings().secret_key != settings.secret_key
    monkeypatch.setenv("ISOCHECK_DATA_DIR", str(tmp_path))
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
        load_settings(mode="production", secret_key=GOOD_SECRET, data_dir=tmp_path)
    assert "ISOCHECK_ENCRYPTION_KEY" in str(info.value)
    assert "ISOCHECK_DATABASE_URL" in str(info.value)


def test_production_starts_with_real_secrets(tmp_path):
    settings = load_settings(
        mode="production",
        secret_key=GOOD_SECRET,
        encryption_key=GOOD_FERNET,
        database_url="postgresql://db/isocheck",
        data_dir=tmp_path,
    )
    assert settings.is_production
    assert not (tmp_path / "demo-encryption.key").exists()


def _production(tmp_path, **overrides):
    values = dict(
        mode="production",
        secret_key=GOOD_SECRET,
        encryption_key=GOOD_FERNET,
        data_dir=tmp_path,
        database_url="postgresql://db/isocheck",
    )
    values.update(overrides)
    return load_settings(**values)


@pytest.mark.parametrize(
    "key", ["notafernetkey", "k" * 44, GOOD_FERNET + ",notafernetkey", " , "]
)
def test_production_refuses_an_encryption_key_that_is_not_fernet(key, tmp_path):
    """Issue 13, finding 10: `notafernetkey` started and every enrolment was then a 500."""
    with pytest.raises(ConfigError) as info:
        _production(tmp_path, encryption_key=key)
    assert "ISOCHECK_ENCRYPTION_KEY" in str(info.value)
    assert "ISOCHECK_SECRET_KEY" not in str(info.value)


@pytest.mark.parametrize(
    "key", ["a" * 47, "ab" * 30, "0123456789" * 4, "abcdefghij" * 5]
)
def test_production_refuses_a_long_but_predictable_secret_key(key, tmp_path):
    """Issue 13, finding 10: a 47x `a` secret key was accepted (length alone is no entropy)."""
    with pytest.raises(ConfigError) as info:
        _production(tmp_path, secret_key=key)
    assert "ISOCHECK_SECRET_KEY" in str(info.value)


def test_production_accepts_generated_keys_and_rotation_lists(tmp_path):
    import secrets

    for _ in range(20):
        _production(tmp_path, secret_key=secrets.token_urlsafe(48))
        _production(tmp_path, secret_key=secrets.token_hex(32))
    _production(tmp_path, encryption_key=f"{Fernet.generate_key().decode()},{GOOD_FERNET}")


def test_production_with_several_workers_needs_a_shared_rate_limit_store(tmp_path):
    """Issue 13, finding 8: with memory:// every worker counts alone (10 wrong activation codes
    a minute with 2 workers instead of 5)."""
    with pytest.raises(ConfigError) as info:
        _production(tmp_path, workers=2)
    assert "ISOCHECK_RATELIMIT_STORAGE_URL" in str(info.value)
    _production(tmp_path, workers=1)
    _production(tmp_path, workers=2, ratelimit_storage_url="redis://127.0.0.1:6379/0")
