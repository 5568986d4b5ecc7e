"""Settings, read once from the environment into one frozen object.

Nothing else in the project reads ``os.environ``: the app factory, the CLI and
the worker receive a :class:`Settings` built by :func:`load_settings`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


def _sse(env: Mapping[str, str]) -> str | None:
    raw = (env.get("TALKTURO_S3_SSE") or "").strip()
    if not raw:
        return None
    if raw == "AES256" or raw == "aws:kms" or (raw.startswith("aws:kms:") and len(raw) > 8):
        return raw
    raise SettingsError(f"TALKTURO_S3_SSE must be AES256 or aws:kms:<key id>, not {raw!r}")


class SettingsError(ValueError):
    """A setting has a value the service cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """Where the ORM connects: SQLite (embedded) or PostgreSQL (production)."""

    url: str

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite://")


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """Where recordings live: a local directory or an S3 bucket with a prefix."""

    url: str
    s3_endpoint_url: str | None
    aws_access_key_id: str | None
    aws_secret_access_key: str | None
    aws_region: str | None
    # Server-side encryption of every object written: ``AES256`` or ``aws:kms[:<key id>]``.
    s3_sse: str | None = None

    @property
    def kind(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def local_path(self) -> Path:
        parts = urlsplit(self.url)
        return Path(parts.netloc + parts.path)

    @property
    def bucket(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def prefix(self) -> str:
        return urlsplit(self.url).path.strip("/")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How ``talkturo serve`` listens and whether it runs the worker loop too."""

    host: str
    port: int
    embedded_worker: bool


@dataclass(frozen=True, slots=True)
class RecordingSettings:
    """Live-stream behaviour."""

    stream_timeout_s: float
    # On SIGTERM, how long live streams may go on before they are handed off.
    drain_timeout_s: float = 30.0
    # Whole-file uploads decode in at most this many child processes at once, each limited
    # to this many seconds of CPU and of wall time.
    decode_workers: int = 2
    decode_timeout_s: float = 300.0
    # A media socket must send a valid ``start`` this soon after it opens.
    stream_start_timeout_s: float = 10.0
    # Media sockets one API key may hold open at once (in this process).
    media_sockets_per_key: int = 100


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """Addresses customers give us (webhook URLs, own-bucket endpoints) and webhook delivery."""

    # TALKTURO_ALLOW_PRIVATE_ENDPOINTS=1: local setups and tests may use private addresses.
    allow_private: bool = False
    # Total limit for the own-bucket probe (write, read back, delete).
    probe_timeout_s: float = 15.0
    # One webhook delivery attempt, connect to last byte.
    webhook_timeout_s: float = 10.0
    # Multiplies the webhook retry schedule; tests shrink it, production keeps 1.
    webhook_retry_scale: float = 1.0


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service needs, built once at start-up."""

    data_dir: Path
    database: DatabaseSettings
    storage: StorageSettings
    server: ServerSettings
    recording: RecordingSettings
    secret_key: str
    endpoints: EndpointSettings = EndpointSettings()
    # The operator's bearer token for /metrics; None: /metrics answers 404.
    metrics_token: str | None = None

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"


def _seconds(
    env: Mapping[str, str], name: str, default: str, lo: float, hi: float, *, above: bool = False
) -> float:
    """Seconds from ``lo`` to ``hi`` (above ``lo`` only, with ``above``)."""
    raw = env.get(name) or default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be seconds, not {raw!r}") from None
    if not lo <= value <= hi or (above and value == lo):
        raise SettingsError(f"{name} must be between {lo:g} and {hi:g} seconds")
    return value


def _flag(env: Mapping[str, str], name: str, default: str) -> bool:
    raw = (env.get(name) or default).strip().lower()
    if raw not in {"0", "1", "true", "false", "yes", "no"}:
        raise SettingsError(f"{name} must be 0 or 1")
    return raw in {"1", "true", "yes"}


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name} must be between {lo} and {hi}, not {value}")
    return value


def _check_database_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if not (parts.netloc + parts.path):
            raise SettingsError("TALKTURO_DATABASE_URL: sqlite:// needs a file path")
        return
    if parts.scheme not in {"postgres", "postgresql", "asyncpg", "psycopg"}:
        raise SettingsError(
            f"TALKTURO_DATABASE_URL must start with sqlite:// or postgres://, not {url!r}"
        )
    try:
        port = parts.port
    except ValueError:
        raise SettingsError(f"TALKTURO_DATABASE_URL has a bad port: {url!r}") from None
    if not parts.hostname or not parts.path.strip("/") or (port is not None and port <= 0):
        raise SettingsError("TALKTURO_DATABASE_URL needs a host and a database name")


def _check_storage_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "file":
        if not (parts.netloc + parts.path):
            raise SettingsError("TALKTURO_STORAGE_URL: file:// needs a directory path")
        return
    if parts.scheme != "s3":
        raise SettingsError(f"TALKTURO_STORAGE_URL must start with file:// or s3://, not {url!r}")
    if not parts.netloc:
        raise SettingsError("TALKTURO_STORAGE_URL: s3:// needs a bucket name")


def _secret_key(env: Mapping[str, str], data_dir: Path) -> str:
    given = env.get("TALKTURO_SECRET_KEY")
    if given:
        if len(given) < 16:
            raise SettingsError("TALKTURO_SECRET_KEY must be at least 16 characters")
        return given
    # Generated once and kept in DATA_DIR, so every process on this data dir agrees.
    path = data_dir / "secret_key"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            candidate = secrets.token_urlsafe(48)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(candidate)
        return path.read_text().strip()
    except FileExistsError:
        return path.read_text().strip()
    except OSError as exc:
        raise SettingsError(f"TALKTURO_DATA_DIR {str(data_dir)!r} is not writable: {exc}") from None


def _endpoint_settings(env: Mapping[str, str]) -> EndpointSettings:
    allow_private = _flag(env, "TALKTURO_ALLOW_PRIVATE_ENDPOINTS", "0")
    scale_raw = env.get("TALKTURO_WEBHOOK_RETRY_SCALE") or "1"
    try:
        scale = float(scale_raw)
    except ValueError:
        raise SettingsError(
            f"TALKTURO_WEBHOOK_RETRY_SCALE must be a number, not {scale_raw!r}"
        ) from None
    if not 0 < scale <= 1:
        raise SettingsError("TALKTURO_WEBHOOK_RETRY_SCALE must be above 0 and at most 1")
    return EndpointSettings(
        allow_private=allow_private,
        probe_timeout_s=_seconds(env, "TALKTURO_ENDPOINT_PROBE_TIMEOUT", "15", 0.1, 300),
        webhook_timeout_s=_seconds(env, "TALKTURO_WEBHOOK_TIMEOUT", "10", 0.1, 60),
        webhook_retry_scale=scale,
    )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``env`` (the process environment by default)."""
    env = os.environ if env is None else env
    data_dir = Path(env.get("TALKTURO_DATA_DIR") or "./data").expanduser().absolute()
    if data_dir.exists() and not data_dir.is_dir():
        raise SettingsError(f"TALKTURO_DATA_DIR {str(data_dir)!r} is not a directory")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(
            f"TALKTURO_DATA_DIR {str(data_dir)!r} cannot be created: {exc}"
        ) from None
    if not os.access(data_dir, os.W_OK):
        raise SettingsError(f"TALKTURO_DATA_DIR {str(data_dir)!r} is not writable")

    db_url = env.get("TALKTURO_DATABASE_URL") or f"sqlite://{data_dir}/talkturo.sqlite3"
    _check_database_url(db_url)
    storage_url = env.get("TALKTURO_STORAGE_URL") or f"file://{data_dir}/recordings"
    _check_storage_url(storage_url)

    port_default = _int(env, "PORT", 8000, 1, 65535)
    embedded = _flag(env, "TALKTURO_EMBEDDED_WORKER", "1")
    timeout = _seconds(env, "TALKTURO_STREAM_TIMEOUT", "60", 0, 86400, above=True)
    drain = _seconds(env, "TALKTURO_DRAIN_TIMEOUT", "30", 0, 3600)
    metrics_token = env.get("TALKTURO_METRICS_TOKEN") or None
    if metrics_token is not None and len(metrics_token.strip()) < 16:
        raise SettingsError("TALKTURO_METRICS_TOKEN must be at least 16 characters")
    decode_timeout = _seconds(env, "TALKTURO_DECODE_TIMEOUT", "300", 1, 86400)
    start_timeout = _seconds(env, "TALKTURO_STREAM_START_TIMEOUT", "10", 0.01, 3600)

    return Settings(
        data_dir=data_dir,
        database=DatabaseSettings(url=db_url),
        storage=StorageSettings(
            url=storage_url,
            s3_endpoint_url=env.get("TALKTURO_S3_ENDPOINT_URL") or None,
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            s3_sse=_sse(env),
        ),
        server=ServerSettings(
            host=env.get("TALKTURO_HOST") or "127.0.0.1",
            port=_int(env, "TALKTURO_PORT", port_default, 1, 65535),
            embedded_worker=embedded,
        ),
        recording=RecordingSettings(
            stream_timeout_s=timeout,
            drain_timeout_s=drain,
            decode_workers=_int(env, "TALKTURO_DECODE_WORKERS", 2, 1, 64),
            decode_timeout_s=decode_timeout,
            stream_start_timeout_s=start_timeout,
            media_sockets_per_key=_int(env, "TALKTURO_MEDIA_SOCKETS_PER_KEY", 100, 1, 100_000),
        ),
        secret_key=_secret_key(env, data_dir),
        endpoints=_endpoint_settings(env),
        metrics_token=metrics_token.strip() if metrics_token else None,
    )
