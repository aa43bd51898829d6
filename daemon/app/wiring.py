"""Builds the providers and the router from the configuration, once, at start."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from daemon.config import ModemSettings, Settings
from daemon.runtime.clock import Clock
from daemon.services.outbox.breaker import CircuitBreaker
from daemon.services.outbox.limits import TokenBucket
from daemon.services.outbox.router import Router, Slot
from providers.base import Outgoing, Provider, ProviderDown, ProviderHealth, SendResult
from providers.console.provider import ConsoleProvider

# Each real provider is imported only when it is configured: twilio and pyfcm bring requests,
# google-auth and more (bench/idle_memory.py) that a daemon without them should not carry.
if TYPE_CHECKING:
    import httpx

    from providers.fast2sms.provider import Fast2SmsProvider
    from providers.fcm.provider import FcmProvider
    from providers.modem.config import ModemConfig
    from providers.modem.provider import ModemProvider
    from providers.twilio.provider import TwilioProvider

log = logging.getLogger(__name__)

# Messages per second the router lets through to the modem; the modem's own segment rate is
# the real limit, so this one only has to stay out of its way.
MODEM_MESSAGE_RATE = 100.0


@dataclass(frozen=True)
class ChainReport:
    """What the SMS chain came out as, for the startup log and health."""

    used: tuple[str, ...]
    left_out: dict[str, str]

    @property
    def console_only(self) -> bool:
        return self.used == ("console",)


def build_router(
    settings: Settings, http: Callable[[], httpx.AsyncClient], clock: Clock
) -> tuple[Router, ChainReport]:
    """The SMS chain of [sms] chain, keeping only the providers that are configured, and the
    push chain (FCM, or the console). `http()` is the shared client, asked for only by a
    provider that is configured and speaks HTTP through it.

    The console only pretends to send, so it stays in the chain only when no real provider is
    there: failing over from Twilio to the console would mark a message sent that no phone got.
    """
    real: dict[str, tuple[Provider, float, int]] = {}
    left_out: dict[str, str] = {}
    for name in settings.sms.chain:
        if name == "twilio":
            if settings.twilio.configured:
                real[name] = (
                    _twilio(settings),
                    settings.twilio.rate_per_second,
                    settings.twilio.concurrency,
                )
            else:
                left_out[name] = "not configured ([twilio] account_sid, auth_token and a sender)"
        elif name == "modem":
            if settings.modem.configured:
                # The modem paces its own segments ([modem] segments_per_minute) and sends
                # one at a time over its serial line.
                real[name] = (_modem(settings), MODEM_MESSAGE_RATE, 1)
            else:
                left_out[name] = "not configured ([modem] port)"
        elif name == "fast2sms":
            if settings.fast2sms.configured:
                real[name] = (
                    _fast2sms(settings, http),
                    settings.fast2sms.rate_per_second,
                    settings.fast2sms.concurrency,
                )
            else:
                left_out[name] = "not configured ([fast2sms] api_key)"
    slots: list[Slot] = []
    for name in settings.sms.chain:
        if name in real:
            provider, rate, concurrency = real[name]
        elif name == "console" and not real:
            provider = ConsoleProvider(channel="sms", reveal_codes=True)
            rate, concurrency = settings.console.rate_per_second, settings.console.concurrency
        else:
            if name == "console":
                left_out[name] = "a real SMS provider is configured"
            continue
        slots.append(
            Slot(
                provider=provider,
                bucket=TokenBucket(rate, clock),
                concurrency=concurrency,
                breaker=CircuitBreaker(name, clock, settings.outbox.breaker_cooldown_seconds),
            )
        )
    report = ChainReport(tuple(slot.name for slot in slots), left_out)
    channels = {
        "sms": slots,
        "push": [_push_slot(settings, clock)],
        "email": [_email_slot(settings, clock)],
    }
    return Router(channels), report


def _email_slot(settings: Settings, clock: Clock) -> Slot:
    """SMTP when [smtp] host and from_address are set, else the console (printed, not sent)."""
    conf = settings.smtp
    provider: Provider
    if conf.configured:
        from providers.smtp.provider import SmtpProvider

        provider = SmtpProvider(
            host=conf.host,
            port=conf.port,
            from_address=conf.from_address,
            username=conf.username,
            password=conf.password.get_secret_value(),
            starttls=conf.starttls,
            tls=conf.tls,
            timeout_seconds=conf.timeout_seconds,
        )
        rate, concurrency = 5.0, 2
        log.info("email chain: smtp (%s:%d)", conf.host, conf.port)
    else:
        provider = ConsoleProvider(channel="email")
        rate, concurrency = settings.console.rate_per_second, settings.console.concurrency
        log.info("email chain: console (no [smtp] host: e-mails are printed to this log)")
    return Slot(
        provider=provider,
        bucket=TokenBucket(rate, clock),
        concurrency=concurrency,
        breaker=CircuitBreaker(
            f"{provider.name} (email)", clock, settings.outbox.breaker_cooldown_seconds
        ),
    )


def _push_slot(settings: Settings, clock: Clock) -> Slot:
    """FCM when [fcm] is configured, else the console, so a fresh install still "sends" push.

    A service-account file that cannot be used is reported here, once, and FCM stays in the
    chain as a provider that is down: pushes wait in the outbox (nothing lost), health says
    why, and fixing the file and restarting sends them.
    """
    conf = settings.fcm
    provider: Provider
    if conf.configured:
        try:
            provider = _fcm(settings)
        except ValueError as exc:
            log.error(
                "fcm: cannot use [fcm] service_account_file: %s. Push notifications wait in the "
                "outbox until this is fixed and shopbell restarted; everything else runs.",
                exc,
            )
            provider = UnusableProvider("fcm", "push", f"[fcm] service_account_file: {exc}")
        rate, concurrency = conf.rate_per_second, conf.concurrency
        log.info("push chain: fcm")
    else:
        provider = ConsoleProvider(channel="push")
        rate, concurrency = settings.console.rate_per_second, settings.console.concurrency
        log.info(
            "push chain: console (no [fcm] service_account_file: push notifications are "
            "printed to this log, not sent)"
        )
    return Slot(
        provider=provider,
        bucket=TokenBucket(rate, clock),
        concurrency=concurrency,
        breaker=CircuitBreaker(
            f"{provider.name} (push)", clock, settings.outbox.breaker_cooldown_seconds
        ),
    )


class UnusableProvider:
    """Stands in for a provider whose configuration is broken: down, with the reason."""

    delivers = True

    def __init__(self, name: str, channel: str, reason: str) -> None:
        self.name = name
        self.channel = channel
        self.reason = reason

    async def send(self, message: Outgoing) -> SendResult:
        raise ProviderDown(self.reason)

    async def health(self) -> ProviderHealth:
        return ProviderHealth("down", self.reason)

    async def close(self) -> None:
        return None


def _twilio(settings: Settings) -> TwilioProvider:
    from providers.twilio.provider import TwilioProvider

    conf = settings.twilio
    callback = f"{settings.api.public_url}/twilio/status" if settings.api.public_url else None
    return TwilioProvider(
        account_sid=conf.account_sid,
        auth_token=conf.auth_token.get_secret_value(),
        from_number=conf.from_number,
        messaging_service_sid=conf.messaging_service_sid,
        base_url=conf.base_url,
        timeout_seconds=conf.timeout_seconds,
        status_callback_url=callback,
        concurrency=conf.concurrency,
    )


def _modem(settings: Settings) -> ModemProvider:
    from providers.modem.provider import ModemProvider

    return ModemProvider(modem_config(settings.modem))


def modem_config(conf: ModemSettings) -> ModemConfig:
    """The [modem] section as the record the provider and its driver read, key for key: the
    one place it is built (the daemon, `shopbell doctor` and `shopbell modem probe`)."""
    from providers.modem.config import ModemConfig

    return ModemConfig(
        port=conf.port,
        baudrate=conf.baudrate,
        pin=conf.pin.get_secret_value(),
        smsc=conf.smsc,
        segments_per_minute=conf.segments_per_minute,
        segments_burst=conf.segments_burst,
        send_timeout_seconds=conf.send_timeout_seconds,
        status_reports=conf.status_reports,
        multipart_timeout_seconds=conf.multipart_timeout_seconds,
        poll_seconds=conf.poll_seconds,
        command_timeout_seconds=conf.command_timeout_seconds,
        boot_timeout_seconds=conf.boot_timeout_seconds,
        registration_timeout_seconds=conf.registration_timeout_seconds,
        signal_seconds=conf.signal_seconds,
        reconnect_max_seconds=conf.reconnect_max_seconds,
    )


def _fcm(settings: Settings) -> FcmProvider:
    from providers.fcm.provider import FcmProvider

    conf = settings.fcm
    return FcmProvider(
        service_account_file=conf.service_account_file,
        project_id=conf.project_id,
        base_url=conf.base_url,
        timeout_seconds=conf.timeout_seconds,
        concurrency=conf.concurrency,
    )


def _fast2sms(settings: Settings, http: Callable[[], httpx.AsyncClient]) -> Fast2SmsProvider:
    from providers.fast2sms.provider import Fast2SmsProvider

    conf = settings.fast2sms
    return Fast2SmsProvider(
        http=http(),
        api_key=conf.api_key.get_secret_value(),
        base_url=conf.base_url,
        route=conf.route,
        sender_id=conf.sender_id,
        timeout_seconds=conf.timeout_seconds,
    )
