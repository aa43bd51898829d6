"""The doctor's modem check: from the daemon when it owns the port, else read-only AT questions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from daemon.admin.doctor.check import STATE_STATUS, Check, Context, DaemonState, not_configured
from daemon.app.wiring import modem_config

if TYPE_CHECKING:
    from providers.modem.config import ModemConfig

# Below this a modem's SMS often fail to go out.
WEAK_SIGNAL_DBM = -100


async def check_modem(ctx: Context) -> list[Check]:
    conf = ctx.settings.modem
    if not conf.configured:
        return [not_configured("modem", "", "[modem] port")]
    state = await ctx.daemon
    if state.running:
        # The daemon owns the port: a second opener would fight it. Ask it instead.
        return [_modem_from_health(state)]
    return [await _probe_modem(modem_config(conf))]


def _modem_from_health(state: DaemonState) -> Check:
    health = state.health
    if health is None:
        return Check(
            "modem",
            "WARN",
            "the daemon owns the port but did not say how the modem is",
            "see the daemon line above",
        )
    sms = (health.get("components") or {}).get("sms") or {}
    modem = (sms.get("providers") or {}).get("modem")
    if not isinstance(modem, dict):
        return Check(
            "modem",
            "WARN",
            "configured, but the daemon does not use it",
            'add "modem" to [sms] chain and restart the daemon',
        )
    status = STATE_STATUS.get(str(modem.get("state")), "WARN")
    detail = str(modem.get("detail") or modem.get("state"))
    fix = "" if status == "OK" else _modem_fix(detail)
    return Check("modem", status, f"(from the daemon) {detail}", fix)


def _modem_fix(detail: str) -> str:
    lowered = detail.lower()
    if "puk" in lowered:
        return "unlock the SIM with its PUK in a phone, then restart shopbell"
    if "pin" in lowered or "sim locked" in lowered:
        return "put the SIM's PIN in [modem] pin (SHOPBELL_MODEM_PIN) and restart shopbell"
    if "no network" in lowered:
        return "check the antenna, the SIM's credit and that the operator covers this place"
    return "check the cable and [modem] port; the shopbell user needs the dialout group"


async def _probe_modem(config: ModemConfig) -> Check:
    """AT, AT+CPIN?, AT+CSQ, AT+CREG?/AT+CEREG?, AT+COPS?: read-only questions, no PIN typed.
    Each waits as long as the daemon would ([modem] command_timeout_seconds)."""
    from providers.modem.at import AtChannel
    from providers.modem.errors import AtError, AtTimeout, ModemError, PortGone

    port, seconds = config.port, config.command_timeout_seconds
    try:
        channel = await AtChannel.open(port, baudrate=config.baudrate)
    except PortGone as exc:
        return Check(
            "modem",
            "FAIL",
            str(exc),
            "check the cable and [modem] port (ls /dev/serial/by-id/); the shopbell user needs "
            "the dialout group",
        )

    async def ask(command: str, prefix: str | None = None) -> str | None:
        try:
            lines = await channel.command(command, seconds=seconds, lenient_prefix=prefix)
        except AtError:
            return None
        for line in lines:
            if prefix and line.startswith(prefix + ":"):
                return line[len(prefix) + 1 :].strip()
        return "" if prefix is None else None

    try:
        try:
            await channel.command("AT", seconds=seconds)
        except AtError:
            pass  # some modems refuse everything, even AT, until the PIN is in: it answered
        except AtTimeout:
            return Check(
                "modem",
                "FAIL",
                f"{port} opens but nothing answers AT",
                "is it the modem's AT port (a stick often has several)? check [modem] baudrate",
            )
        try:
            sim = await channel.command("AT+CPIN?", seconds=seconds, lenient_prefix="+CPIN")
            sim_state = next(
                (line.split(":", 1)[1].strip().upper() for line in sim if line.startswith("+CPIN")),
                "",
            )
        except AtError as exc:
            sim_state = "MISSING" if exc.is_cme(10, 13, 15) else f"ERROR ({exc.line})"
        csq = await ask("AT+CSQ", "+CSQ")
        creg = await ask("AT+CREG?", "+CREG")
        cereg = await ask("AT+CEREG?", "+CEREG")
        cops = await ask("AT+COPS?", "+COPS")
    except ModemError as exc:
        return Check("modem", "FAIL", f"{port}: {exc}", _modem_fix(str(exc)))
    finally:
        await channel.close()

    dbm = _signal_dbm(csq)
    registered = _registered(creg) or _registered(cereg)
    operator = _quoted(cops or "")
    signal = "signal unknown" if dbm is None else f"signal {dbm} dBm"
    network = f"registered on {operator or 'a network'}" if registered else "not registered"
    found = f"{port}: SIM {sim_state.lower() or 'state unknown'}, {network}, {signal}"
    if sim_state in ("SIM PIN", "SIM PIN2"):
        if config.pin:
            return Check(
                "modem",
                "WARN",
                found,
                "the daemon enters [modem] pin when it starts (the doctor never types it)",
            )
        return Check(
            "modem", "FAIL", found, "put the SIM's PIN in [modem] pin (SHOPBELL_MODEM_PIN)"
        )
    if sim_state.startswith("SIM PUK"):
        return Check("modem", "FAIL", found, _modem_fix("puk"))
    if sim_state != "READY":
        return Check(
            "modem", "FAIL", found, "check that a SIM card is in the modem, the right way round"
        )
    if not registered:
        return Check("modem", "FAIL", found, _modem_fix("no network"))
    if dbm is not None and dbm < WEAK_SIGNAL_DBM:
        return Check("modem", "WARN", found, "weak signal: move the modem or add an antenna")
    return Check("modem", "OK", found)


def _signal_dbm(csq: str | None) -> int | None:
    rssi = (csq or "").split(",")[0].strip()
    return -113 + 2 * int(rssi) if rssi.isdigit() and int(rssi) <= 31 else None


def _registered(reply: str | None) -> bool:
    # +CREG: <n>,<stat>[,...]: stat 1 home network, 5 roaming.
    fields = [part.strip() for part in (reply or "").split(",")]
    return len(fields) >= 2 and fields[1] in ("1", "5")


def _quoted(value: str) -> str:
    start = value.find('"')
    end = value.find('"', start + 1)
    return value[start + 1 : end].strip() if start >= 0 and end > start else ""
