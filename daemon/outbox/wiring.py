"""Builds the providers and the router from the configuration, once, at start."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from daemon.clock import Clock
from daemon.config import Settings
from daemon.outbox.breaker import CircuitBreaker
from daemon.outbox.limits import TokenBucket
from daemon.outbox.router import Router, Slot
from providers.base import Provider
from providers.console.provider import ConsoleProvider
from providers.fast2sms.provider import Fast2SmsProvider
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
    settings: Settings, http: httpx.AsyncClient, clock: Clock
) -> tuple[Router, ChainReport]:
    """The SMS chain of [sms] chain, keeping only the providers that are configured.

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
    return Router({"sms": slots}), report


def _twilio(settings: Settings) -> TwilioProvider:
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
        max_threads=conf.concurrency,
    )


def _modem(settings: Settings) -> ModemProvider:
    conf = settings.modem
    return ModemProvider(
        port=conf.port,
        baudrate=conf.baudrate,
        pin=conf.pin.get_secret_value() or None,
        smsc=conf.smsc or None,
        segments_per_minute=conf.segments_per_minute,
        send_timeout_seconds=conf.send_timeout_seconds,
        status_reports=conf.status_reports,
        multipart_timeout_seconds=conf.multipart_timeout_seconds,
        reconnect_max_seconds=conf.reconnect_max_seconds,
    )


def _fast2sms(settings: Settings, http: httpx.AsyncClient) -> Fast2SmsProvider:
    conf = settings.fast2sms
    return Fast2SmsProvider(
        http=http,
        api_key=conf.api_key.get_secret_value(),
        base_url=conf.base_url,
        route=conf.route,
        sender_id=conf.sender_id,
        timeout_seconds=conf.timeout_seconds,
    )
