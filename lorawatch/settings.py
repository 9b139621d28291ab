"""Settings from the environment (prefix `LORAWATCH_`) and an optional env file, built once in the
composition root and passed down; no other package reads the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.notifiers.email import parse_smtp_url


class Settings(BaseSettings):
    """Every setting lorawatch reads. The README's configuration table documents each one."""

    # hide_input_in_errors: a refused value may be a URL with a password in it; errors never echo it.
    model_config = SettingsConfigDict(env_prefix="LORAWATCH_", env_file=None, extra="ignore", hide_input_in_errors=True)

    database_url: SecretStr | None = Field(
        default=None, description="PostgreSQL URL of a TimescaleDB database; unset = embedded cluster (demo)"
    )
    mqtt_url: SecretStr | None = Field(
        default=None,
        description="mqtt:// or mqtts://[user:password@]host[:port]; unset = embedded broker (demo)",
    )
    mqtt_topics: str = Field(
        default="v3/+/devices/+/up", description="comma-separated MQTT topic filters to subscribe to"
    )
    mqtt_client_id: str = Field(default="lorawatch-ingest", description="MQTT client id (stable: QoS 1 sessions)")
    mqtt_qos: int = Field(default=1, ge=0, le=1, description="subscription QoS (TTS delivers QoS 0 whatever you ask)")
    mqtt_ca_file: Path | None = Field(default=None, description="CA bundle for mqtts:// (system CAs if unset)")
    tts_api_url: str | None = Field(
        default=None,
        description="TTS base URL for Storage Integration backfill, e.g. https://eu1.cloud.thethings.network",
    )
    tts_api_key: SecretStr | None = Field(default=None, description="TTS API key with TRAFFIC_READ, for backfill")
    data_dir: Path = Field(default=Path(".lorawatch"), description="where the embedded servers keep their data")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: Literal["json", "text"] = Field(default="text", description="log line format")
    ingest_batch_size: int = Field(default=2000, ge=1, le=100_000, description="max uplinks per COPY batch")
    ingest_batch_ms: int = Field(default=100, ge=1, le=60_000, description="max wait before a partial batch is written")
    ingest_buffer: int = Field(
        default=50_000, ge=100, description="max uplinks held in memory while the database is unavailable"
    )
    ingest_buffer_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024 * 1024,
        description="max bytes of messages held in memory (with LORAWATCH_INGEST_BUFFER: whichever is reached first)",
    )
    ingest_max_message_bytes: int = Field(
        default=262_144,
        ge=1024,
        description="larger messages are dead-lettered (stage size), only their first 64 KiB kept",
    )
    ingest_max_future_s: int = Field(
        default=600, ge=0, description="uplinks timestamped further ahead of our clock are dead-lettered"
    )
    ingest_max_age_days: float | None = Field(
        default=None, gt=0, description="uplinks older than this are dead-lettered; unset = any age"
    )
    ingest_applications: str = Field(
        default="",
        description="comma-separated application ids accepted (others are dead-lettered, stage topic); empty = any",
    )
    ingest_workers: int = Field(
        default=2, ge=1, le=16, description="processes that decode and write (the MQTT side has its own)"
    )
    metrics_port: int | None = Field(default=None, description="serve Prometheus metrics on this port")
    rules_file: Path | None = Field(
        default=None,
        description="alert rules YAML (docs/alerts.md); unset = the defaults shipped in alerts/default_rules.yaml",
    )
    # Notifications (docs/alerts.md, "Notifications"): the default channels, used by routes written `{}`.
    webhook_url: str | None = Field(
        default=None, description="default webhook: alert notifications are POSTed to it as JSON"
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        repr=False,  # not even the field's name in a logged repr
        description="HMAC-SHA256 key: the default webhook's body is signed in X-Lorawatch-Signature",
    )
    smtp_url: SecretStr | None = Field(
        default=None,
        description="SMTP server for email: smtp://host[:port], smtp+starttls:// or smtps://[user:password@]host[:port]",
    )
    smtp_ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the SMTP server (system CAs if unset)"
    )
    email_to: str | None = Field(default=None, description="comma-separated addresses of the default email channel")
    email_from: str = Field(
        default="lorawatch@localhost", description="From address of notification email (one your SMTP server accepts)"
    )
    delivery_first_retry_s: float = Field(
        default=5, gt=0, description="wait after a notification's first failed attempt; doubles with each one"
    )
    delivery_max_retry_s: float = Field(default=600, gt=0, description="longest wait between two attempts")
    delivery_max_attempts: int = Field(default=200, ge=1, description="a notification is dead after this many attempts")
    delivery_max_age_h: float = Field(
        default=24,
        gt=0,
        description="a notification is also dead when an attempt fails this long after it was enqueued",
    )
    delivery_timeout_s: float = Field(default=10, gt=0, description="webhook and SMTP timeout, per network operation")
    delivery_lease_s: float = Field(
        default=120,
        gt=0,
        description="a notification being sent is kept from other delivery loops this long (resent after it if the "
        "sender died); at least 3x LORAWATCH_DELIVERY_TIMEOUT_S",
    )
    delivery_concurrency: int = Field(default=4, ge=1, le=64, description="notifications sent at once")
    delivery_poll_s: float = Field(
        default=1, gt=0, description="how often delivery looks for retries that came due (new ones wake it at once)"
    )

    # The API (`lorawatch serve`, docs/security.md).
    api_database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL `lorawatch serve` connects with, as the lorawatch_api role; unset = "
        "LORAWATCH_DATABASE_URL with user lorawatch_api and no password (the embedded cluster trusts loopback)",
    )
    serve_host: str = Field(default="127.0.0.1", description="address `lorawatch serve` listens on")
    serve_port: int = Field(default=8000, ge=1, le=65535, description="port `lorawatch serve` listens on")
    serve_tls_cert_file: Path | None = Field(
        default=None, description="TLS certificate (PEM) for `lorawatch serve`; with the key file it serves https"
    )
    serve_tls_key_file: Path | None = Field(default=None, description="TLS private key (PEM) for `lorawatch serve`")
    serve_forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="comma-separated proxy addresses whose X-Forwarded-For/-Proto are believed (client address, https)",
    )
    api_pool_size: int = Field(default=10, ge=1, le=200, description="database connections the API keeps at most")
    map_tiles_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]*\{z\}[^\s]*\{x\}[^\s]*\{y\}[^\s]*$",
        description="the dashboard map's XYZ raster tiles, e.g. https://tiles.example.gov.uk/{z}/{x}/{y}.png "
        "(a council's own tile server); unset: the points on a plain projection, nothing fetched",
    )
    session_ttl_h: float = Field(default=12, gt=0, le=24 * 30, description="a login session lasts this long")
    cookie_secure: bool | None = Field(
        default=None,
        description="mark the session cookie Secure: true, false, or unset = when the request came over https",
    )
    allowed_origins: str = Field(
        default="",
        description="comma-separated origins (https://host[:port]) besides the API's own that may log in and send "
        "cookie-authenticated changes",
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="failed logins for one username within LORAWATCH_LOGIN_WINDOW_S before refusal"
    )
    login_max_failures_per_ip: int = Field(
        default=50, ge=1, description="failed logins from one client address within the window before refusal"
    )
    login_window_s: float = Field(default=900, gt=0, description="the failed-login counting window, seconds")
    password_profile: Literal["rfc9106-low-memory", "cheapest"] = Field(
        default="rfc9106-low-memory",
        description="argon2 parameters for new password hashes; `cheapest` is for tests only (protects nothing)",
    )

    @field_validator("smtp_url")
    @classmethod
    def _smtp(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip():
            parse_smtp_url(value.get_secret_value())  # its errors never echo the URL (it may hold a password)
            return value
        return None

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in (o.strip() for o in value.split(",") if o.strip()):
            parts = urlsplit(origin)
            if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in ("", "/") or parts.query:
                msg = f"LORAWATCH_ALLOWED_ORIGINS: {origin!r} is not an origin (scheme://host[:port], no path)"
                raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _serve_tls(self) -> Settings:
        if (self.serve_tls_cert_file is None) != (self.serve_tls_key_file is None):
            raise ValueError(
                "LORAWATCH_SERVE_TLS_CERT_FILE and LORAWATCH_SERVE_TLS_KEY_FILE go together: set both or neither"
            )
        return self

    @model_validator(mode="after")
    def _delivery(self) -> Settings:
        if self.delivery_max_retry_s < self.delivery_first_retry_s:
            raise ValueError("LORAWATCH_DELIVERY_MAX_RETRY_S must be at least LORAWATCH_DELIVERY_FIRST_RETRY_S")
        if self.delivery_lease_s < 3 * self.delivery_timeout_s:
            raise ValueError("LORAWATCH_DELIVERY_LEASE_S must be at least 3x LORAWATCH_DELIVERY_TIMEOUT_S")
        return self

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            msg = f"LORAWATCH_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {value!r}"
            raise ValueError(msg)
        return value


@dataclass(frozen=True, slots=True)
class MqttTarget:
    """A parsed `LORAWATCH_MQTT_URL`."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def parse_mqtt_url(url: str) -> MqttTarget:
    """Parse `mqtt://` or `mqtts://[user[:password]@]host[:port]`, with a clear error for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "mqtts"}:
        msg = f"MQTT URL must start with mqtt:// or mqtts://, got {parts.scheme or 'no scheme'!r}"
        raise ValueError(msg)
    if not parts.hostname:
        msg = "MQTT URL has no host"
        raise ValueError(msg)
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        msg = f"MQTT URL has an invalid port: {exc}"
        raise ValueError(msg) from None
    return MqttTarget(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def settings_table() -> str:
    """The README's configuration table, generated from `Settings` (a test keeps the README in step)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        default = "" if info.default is None else f"`{info.default}`"
        rows.append(f"| `LORAWATCH_{name.upper()}` | {default} | {info.description} |")
    return "\n".join(rows)
