"""Typed settings, read once from ``ISOCHECK_*`` environment variables.

Every setting is documented in the README's configuration table. Nothing secret has a production
default: in ``production`` mode :func:`load_settings` refuses to start without a real secret key
and an encryption key, and says why.
"""

from __future__ import annotations

import math
import secrets
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.schedule.policy import DEFAULT_TIMEZONE

#: Secret keys that are obviously placeholders and are refused in production mode.
WEAK_SECRETS = frozenset({"", "dev", "change-me", "changeme", "secret", "isocheck", "demo"})
#: Shortest secret key accepted in production (characters).
MIN_SECRET_LENGTH = 32
#: Least estimated entropy of a production secret key (bits; character frequencies times length):
#: ``secrets.token_urlsafe(48)`` has about 350, 47 times ``a`` has 0.
MIN_SECRET_BITS = 128
#: Fewest distinct characters in a production secret key.
MIN_SECRET_DISTINCT = 12


class Mode(StrEnum):
    demo = "demo"
    production = "production"


class ConfigError(RuntimeError):
    """Raised when the settings cannot start the service; the message says what to set."""


class Settings(BaseSettings):
    """All of isocheck's settings. Field names map to ``ISOCHECK_<NAME>`` (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="ISOCHECK_", extra="ignore", frozen=True)

    mode: Mode = Field(Mode.demo, description="`demo` (defaults, demo data) or `production`")
    data_dir: Path = Field(Path("var"), description="Directory for the SQLite file and uploads")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file `<data_dir>/isocheck.db`"
    )
    secret_key: str = Field(
        "", description="Signs sessions and CSRF tokens; required in production"
    )
    encryption_key: str = Field(
        "",
        description="Fernet key: images and face templates at rest; required in production",
    )
    timezone: str = Field(DEFAULT_TIMEZONE, description="Default zone for schedules")
    host: str = Field("127.0.0.1", description="`isocheck serve` bind address")
    port: int = Field(8000, ge=1, le=65535, description="`isocheck serve` port")
    max_upload_bytes: int = Field(
        12 * 1024 * 1024, ge=1024, description="Largest request body accepted (HTTP 413 above)"
    )
    scheduler_interval_seconds: float = Field(
        5.0, gt=0, le=300, description="Seconds between scheduler sweeps"
    )
    scheduler_stale_seconds: float = Field(
        60.0, gt=0, description="/readyz turns red when the last sweep is older than this"
    )
    log_level: str = Field("INFO", description="Python logging level")
    log_format: str = Field(
        "text",
        pattern="^(text|json)$",
        description="`text`, or `json` (one object a line, with request_id)",
    )
    # --- scheduler (issue 5) ---
    schedule_policy: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON overrides of the built-in schedule policy defaults (docs/scheduler.md)",
    )
    schedule_horizon_hours: float = Field(
        36.0, ge=12, le=72, description="Hours ahead for which check-in prompts are planned"
    )
    retention_days: float = Field(
        14.0, ge=0, description="Days after release before photos, selfies and templates are purged"
    )
    outbox_retention_days: float = Field(
        30.0, ge=0, description="Days a delivered notification (outbox row) is kept; 0 = forever"
    )
    audit_retention_days: float = Field(
        365.0,
        ge=0,
        description="Days audit events stay in the live table before the retention sweep moves "
        "them to audit_events_archive; 0 = never",
    )
    non_reporting_hours: float = Field(
        24.0, gt=0, description="Hours without a health declaration before a non_reporting alert"
    )
    scheduler_batch_size: int = Field(
        1000, ge=1, le=50000, description="Rows one sweep statement claims at most"
    )
    scheduler_sweep_budget_seconds: float = Field(
        20.0, gt=0, description="A sweep stops taking new batches after this many seconds"
    )
    scheduler_downtime_margin_seconds: float = Field(
        120.0,
        ge=0,
        description="A prompt is missed_system if the scheduler was silent this long before its "
        "due time, or opened it this late",
    )

    @field_validator("schedule_policy")
    @classmethod
    def _valid_policy(cls, value: dict[str, Any]) -> dict[str, Any]:
        from server.schedule.policy import validate_overrides

        validate_overrides(value)
        return value

    public_url: str = Field(
        "http://127.0.0.1:8000", description="Base URL phones use; put in activation QR codes"
    )
    warm_verifier: bool = Field(
        True,
        description="Build the face networks (checksummed model files, OpenVINO's compiled "
        "networks: ~2-3 s) when a server process starts (each gunicorn worker, `isocheck serve`), "
        "so the first check-in after a deploy is not the slow one; false for a process that "
        "never verifies",
    )
    proxy_hops: int = Field(
        0,
        ge=0,
        le=5,
        description="Reverse proxies in front of the app that set X-Forwarded-For/-Proto; the "
        "client address (rate limits, audit) is taken from them. 0: the peer address",
    )
    ratelimit_storage_url: str = Field(
        "memory://",
        description="Rate-limit counters: memory:// (one process) or redis://host:6379 (shared)",
    )
    workers: int = Field(
        1,
        ge=1,
        description="gunicorn worker processes (server/gunicorn_conf.py; default: one per core). "
        "In production more than one needs a shared rate-limit store (redis://)",
    )
    metrics_token: str = Field(
        "",
        description="Bearer token the Prometheus scraper sends to /metrics; without one /metrics "
        "is open in demo mode and 404 in production",
    )
    ratelimit_enabled: bool = Field(True, description="Turn rate limits off (load tests only)")
    checkin_retake: bool = Field(
        True,
        description="A selfie in the face review band, with the window open, asks the phone for "
        "one more selfie (no attempt used) before a person reviews; both decide together",
    )
    rate_limit_activation: str = Field(
        "5/minute;20/hour", description="Activation attempts per client IP (brute-force guard)"
    )
    rate_limit_checkin: str = Field("6/minute;60/hour", description="Selfie uploads per device")
    rate_limit_device: str = Field("120/minute", description="Other mobile API calls per device")
    rate_limit_ip: str = Field(
        "1200/minute",
        description="All /api/v1 calls per client IP: a ceiling against one abusive host, high "
        "because carriers put many phones behind one address (CGNAT)",
    )
    rate_limit_staff_login: str = Field("10/minute", description="Staff logins per client IP")
    risk_rules_file: str | None = Field(
        None, description="YAML risk rules replacing the packaged MoH-based set"
    )
    # Notifications (docs/notifications.md). Channels not listed in notify_channels are logged.
    notify_channels: str = Field(
        "log",
        description="Comma-separated channels that really send (`fcm`, `email`, `webhook`); "
        "rows for any other channel are written to the log and marked sent",
    )
    fcm_credentials_file: Path | None = Field(
        None, description="Firebase service-account JSON file; required when `fcm` is enabled"
    )
    # Web push for the web app (server/webapp/push.py, docs/notifications.md): all three or none.
    fcm_web_config: str = Field(
        "",
        description="The Firebase web app's config (apiKey, projectId, messagingSenderId, appId) "
        "as a JSON object, or the path of a JSON file holding it",
    )
    fcm_vapid_key: str = Field(
        "", description="The Firebase project's web push (VAPID) public key, base64url"
    )
    firebase_js_dir: Path | None = Field(
        None,
        description="Directory of the `firebase` npm package (its browser ES modules "
        "firebase-app.js and firebase-messaging.js), served at /app/vendor/",
    )
    smtp_host: str = Field("", description="SMTP server; required when `email` is enabled")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port (587 = submission)")
    smtp_user: str = Field("", description="SMTP user name; empty = no authentication")
    smtp_password: str = Field("", description="SMTP password")
    smtp_from: str = Field("", description="From address of notification e-mails")
    smtp_starttls: bool = Field(
        True, description="Upgrade the SMTP connection with STARTTLS (refuse to send without)"
    )
    smtp_ca_file: Path | None = Field(
        None, description="CA bundle for a relay with a private certificate; default: system CAs"
    )
    webhook_secret: str = Field(
        "", description="HMAC-SHA256 key signing webhook bodies; required when `webhook` is enabled"
    )
    notify_batch_size: int = Field(
        100, ge=1, le=500, description="Outbox rows claimed per channel per round"
    )
    notify_max_attempts: int = Field(
        8, ge=1, le=50, description="Delivery attempts before a notification is marked `dead`"
    )
    notify_backoff_seconds: float = Field(
        30.0, gt=0, description="First retry delay; doubles per attempt, with jitter"
    )
    notify_backoff_max_seconds: float = Field(3600.0, gt=0, description="Longest retry delay")
    notify_lease_seconds: float = Field(
        300.0,
        gt=0,
        description="A claimed row is retried after this long if its sender died before "
        "recording the result",
    )
    notify_rate_limits: dict[str, float] = Field(
        default_factory=lambda: {"fcm": 100.0, "email": 5.0, "webhook": 20.0, "log": 1000.0},
        description="Messages per second per channel and per scheduler process (JSON object)",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'isocheck.db').resolve()}"

    @property
    def is_production(self) -> bool:
        return self.mode is Mode.production


def check_production(settings: Settings) -> None:
    """Refuse to run production mode on placeholder secrets; the message names what to set."""
    if not settings.is_production:
        return
    problems = []
    key = settings.secret_key
    if (
        key.lower() in WEAK_SECRETS
        or len(key) < MIN_SECRET_LENGTH
        or len(set(key)) < MIN_SECRET_DISTINCT
        or entropy_bits(key) < MIN_SECRET_BITS
    ):
        problems.append(
            f"ISOCHECK_SECRET_KEY must be a random string of at least {MIN_SECRET_LENGTH} "
            f"characters and about {MIN_SECRET_BITS} bits of entropy "
            '(e.g. python -c "import secrets; print(secrets.token_urlsafe(48))")'
        )
    if not settings.encryption_key or not _valid_fernet_keys(settings.encryption_key):
        problems.append(
            "ISOCHECK_ENCRYPTION_KEY must be one or more comma-separated Fernet keys (python -c "
            '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")'
        )
    if settings.workers > 1 and settings.ratelimit_storage_url.startswith("memory://"):
        problems.append(
            f"ISOCHECK_RATELIMIT_STORAGE_URL must name a shared store (redis://host:6379/0) with "
            f"{settings.workers} workers (ISOCHECK_WORKERS): memory:// counts per process, so "
            "every limit would be multiplied by the number of workers and reset on reload"
        )
    if not settings.database_url:
        problems.append("ISOCHECK_DATABASE_URL must name the production database (PostgreSQL)")
    if problems:
        raise ConfigError("refusing to start in production mode:\n  - " + "\n  - ".join(problems))


def check_web_push(settings: Settings) -> None:
    """Web push settings come as a set of three, each well-formed (server/webapp/push.py)."""
    from server.webapp.push import web_push

    try:
        web_push(settings)
    except ValueError as exc:
        raise ConfigError(f"web push: {exc}") from exc


def entropy_bits(value: str) -> float:
    """Shannon estimate of a string's entropy: bits per character (from its own character
    frequencies) times its length. Repetitive or low-variety keys score low."""
    if not value:
        return 0.0
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values()) * n


def _valid_fernet_keys(value: str) -> bool:
    from cryptography.fernet import Fernet

    parts = [k.strip() for k in value.split(",") if k.strip()]
    if not parts:
        return False
    try:
        for part in parts:
            Fernet(part.encode())
    except (ValueError, TypeError):
        return False
    return True


def load_settings(**overrides: object) -> Settings:
    """Read the environment (plus explicit overrides, used by tests) and validate it.

    In demo mode missing secrets are replaced by random values generated once per data
    directory and kept there (so every gunicorn worker and every restart agrees), and nothing
    secret is ever a constant in the code.
    """
    settings = Settings(**overrides)  # type: ignore[arg-type]
    check_production(settings)
    check_web_push(settings)
    if not settings.is_production:
        fill: dict[str, object] = {}
        if not settings.secret_key:
            fill["secret_key"] = _demo_file_secret(
                settings.data_dir, "demo-secret.key", lambda: secrets.token_urlsafe(48)
            )
        if not settings.encryption_key:
            fill["encryption_key"] = _demo_encryption_key(settings.data_dir)
        if fill:
            settings = settings.model_copy(update=fill)
    return settings


def _demo_encryption_key(data_dir: Path) -> str:
    """Demo mode keeps its generated Fernet key in the data directory so stored images stay
    readable across restarts. Production never takes this path."""
    from cryptography.fernet import Fernet

    return _demo_file_secret(
        data_dir, "demo-encryption.key", lambda: Fernet.generate_key().decode()
    )


def _demo_file_secret(data_dir: Path, name: str, make) -> str:
    """Read ``data_dir/name``, or create it (mode 0600) with ``make()``. Several processes may
    race here (gunicorn workers): the file is created exclusively, so all of them end with the
    first one's value."""
    import os

    path = data_dir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(50):
        if path.exists():
            value = path.read_text().strip()
            if value:
                return value
            import time

            time.sleep(0.02)  # another process is writing it
            continue
        value = make()
        tmp = data_dir / f".{name}.{os.getpid()}"
        tmp.write_text(value)
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # atomic and exclusive: the first writer wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip()
