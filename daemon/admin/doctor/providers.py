"""The doctor's provider checks: a live probe of each configured one that sends nothing."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

import httpx

from daemon.admin.doctor.check import STATE_STATUS, Check, Context, not_configured


async def check_twilio(ctx: Context) -> list[Check]:
    conf = ctx.settings.twilio
    if not conf.configured:
        return [
            not_configured(
                "twilio",
                conf.account_sid or conf.auth_token.get_secret_value(),
                "account_sid, SHOPBELL_TWILIO_AUTH_TOKEN and from_number "
                "(or messaging_service_sid)",
            )
        ]
    from providers.twilio.provider import TwilioProvider

    provider = TwilioProvider(
        account_sid=conf.account_sid,
        auth_token=conf.auth_token.get_secret_value(),
        from_number=conf.from_number,
        messaging_service_sid=conf.messaging_service_sid,
        base_url=conf.base_url,
        timeout_seconds=conf.timeout_seconds,
        concurrency=1,
    )
    try:
        # GET Accounts/{sid}.json: proves the credentials and the account; sends nothing.
        health = await provider.health()
    finally:
        await provider.close()
    status = STATE_STATUS.get(health.state, "WARN")
    fix = ""
    if status != "OK":
        fix = (
            "check [twilio] account_sid and SHOPBELL_TWILIO_AUTH_TOKEN (Twilio console > "
            "Account info)"
            if "401" in health.detail or "20003" in health.detail
            else "check the internet connection and [twilio] base_url; Twilio's status: "
            "status.twilio.com"
        )
    return [Check("twilio", status, health.detail or health.state, fix)]


async def check_fast2sms(ctx: Context) -> list[Check]:
    conf = ctx.settings.fast2sms
    if not conf.configured:
        return [not_configured("fast2sms", "", "SHOPBELL_FAST2SMS_API_KEY")]
    key = conf.api_key.get_secret_value()
    url = conf.base_url.rstrip("/") + "/wallet"
    # The wallet endpoint takes the key only in the query string, which httpx logs at
    # INFO: drop the lines that hold it, for as long as this request runs.
    hide = _Without(key, quote(key, safe=""))
    logging.getLogger("httpx").addFilter(hide)
    try:
        async with httpx.AsyncClient(timeout=conf.timeout_seconds) as http:
            answer = await http.get(url, params={"authorization": key})
    except httpx.HTTPError as exc:
        return [
            Check(
                "fast2sms",
                "FAIL",
                f"cannot reach {httpx.URL(url).host} ({type(exc).__name__})",
                "check the internet connection and [fast2sms] base_url",
            )
        ]
    finally:
        logging.getLogger("httpx").removeFilter(hide)
    try:
        body = answer.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    if answer.status_code == 200 and body.get("return") is True:
        wallet = body.get("wallet")
        found = "API key accepted"
        if wallet is not None:
            found += f"; wallet balance {wallet}"
        return [Check("fast2sms", "OK", found)]
    said = body.get("message") or f"HTTP {answer.status_code}"
    code = body.get("status_code")
    return [
        Check(
            "fast2sms",
            "FAIL",
            f"Fast2SMS refused the wallet check: {said}" + (f" (code {code})" if code else ""),
            "check SHOPBELL_FAST2SMS_API_KEY (Fast2SMS > Dev API) and the account's wallet",
        )
    ]


async def check_fcm(ctx: Context) -> list[Check]:
    conf = ctx.settings.fcm
    if not conf.configured:
        return [not_configured("fcm", "", "[fcm] service_account_file")]
    from providers.fcm.client import ServiceAccountError, load_service_account

    try:
        account = await asyncio.to_thread(
            load_service_account, conf.service_account_file, conf.project_id
        )
    except ServiceAccountError as exc:
        return [
            Check(
                "fcm",
                "FAIL",
                f"service account file {exc}",
                "download a key in the Firebase console (Project settings > Service "
                "accounts) and point [fcm] service_account_file at it",
            )
        ]
    return [
        Check(
            "fcm",
            "OK",
            f"service account {account.client_email} for project {account.project_id} "
            "(file read and parsed; nothing sent)",
        )
    ]


async def check_smtp(ctx: Context) -> list[Check]:
    conf = ctx.settings.smtp
    if not conf.configured:
        return [not_configured("smtp", conf.host, "[smtp] host and from_address")]
    import aiosmtplib

    where = f"{conf.host}:{conf.port}"
    client = aiosmtplib.SMTP(
        hostname=conf.host,
        port=conf.port,
        use_tls=conf.tls,
        start_tls=False,
        timeout=conf.timeout_seconds,
    )
    steps = ["connected"]
    try:
        await client.connect()
        await client.ehlo()
        if conf.starttls:
            if not client.supports_extension("starttls"):
                return [
                    Check(
                        "smtp",
                        "FAIL",
                        f"{where} does not offer STARTTLS",
                        "set [smtp] starttls = false only if the server is on this machine "
                        "or network; else use its STARTTLS port (587) or tls = true (465)",
                    )
                ]
            await client.starttls()
            steps.append("STARTTLS")
        if conf.username:
            await client.login(conf.username, conf.password.get_secret_value())
            steps.append(f"logged in as {conf.username}")
        await client.quit()
    except aiosmtplib.SMTPAuthenticationError as exc:
        return [
            Check(
                "smtp",
                "FAIL",
                f"{where} refused the login of {conf.username} ({exc.code})",
                "check [smtp] username and SHOPBELL_SMTP_PASSWORD",
            )
        ]
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return [
            Check(
                "smtp",
                "FAIL",
                f"{where}: {_smtp_reason(exc)}",
                "check [smtp] host, port and tls/starttls, and that the server is up",
            )
        ]
    finally:
        if client.is_connected:
            client.close()
    return [Check("smtp", "OK", f"{where}: {', '.join(steps)}; nothing sent")]


async def check_sms_chain(ctx: Context) -> list[Check]:
    s = ctx.settings
    configured = {
        "twilio": s.twilio.configured,
        "fast2sms": s.fast2sms.configured,
        "modem": s.modem.configured,
    }
    used = [name for name in s.sms.chain if name != "console" and configured.get(name)]
    if used:
        return [Check("sms", "OK", f"chain: {' -> '.join(used)}")]
    return [
        Check(
            "sms",
            "WARN",
            "no real SMS provider is configured: SMS (one-time codes too) are only "
            "printed to the daemon's log",
            "configure [twilio], [fast2sms] or [modem] and name it in [sms] chain",
        )
    ]


class _Without(logging.Filter):
    """Drops log records whose text holds one of `secrets`."""

    def __init__(self, *secrets: str) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not any(secret in text for secret in self._secrets)


def _smtp_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
