"""`shopbell modem`: a simulated modem to try shopbell without one, and a probe of a real one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

import click

from daemon.admin.cli.base import CONTEXT, fail, load
from providers.modem.simulator_profiles import PROFILES as SIMULATOR_PROFILES


@click.group(context_settings=CONTEXT)
def modem() -> None:
    """Work with a GSM/LTE modem: a simulator to try shopbell without one, and a probe."""


@modem.command("simulate")
@click.option(
    "--link",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also make this path a symlink to the simulator (stable across replugs).",
)
@click.option(
    "--profile",
    type=click.Choice(sorted(SIMULATOR_PROFILES)),
    default="generic",
    show_default=True,
    help="Which modem's quirks to imitate.",
)
@click.option(
    "--latency",
    type=click.FloatRange(0, 60),
    default=0.5,
    show_default=True,
    help="Seconds each send takes.",
)
@click.option("--pin", default=None, help="Lock the simulated SIM with this PIN.")
@click.option(
    "--reports",
    type=click.Choice(["delivered", "failed", "none"]),
    default="delivered",
    show_default=True,
    help="Delivery reports the simulated network sends back.",
)
def modem_simulate(
    link: Path | None, profile: str, latency: float, pin: str | None, reports: str
) -> None:
    """Run a simulated modem on a pseudo-terminal until Ctrl+C.

    It prints the device path: set [modem] port to it and run `shopbell run` in another
    terminal to send and receive SMS with no hardware.
    """
    # The modem's modules load only for the commands that use them: `shopbell run` without a
    # modem should not carry them.
    from providers.modem.simulator import ModemSimulator, run_simulator

    sim = ModemSimulator(
        link=link,
        profile=profile,
        pin=pin,
        send_latency=latency,
        status_reports=reports,  # type: ignore[arg-type]
    )

    def show(path: str) -> None:
        click.echo(f"simulated {profile} modem at {path}")
        click.echo(f'set [modem] port = "{path}" in the config (Ctrl+C stops the simulator)')

    async def serve() -> None:
        # Ctrl+C or SIGTERM: stop cleanly, so the pty closes and the --link symlink goes.
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await run_simulator(sim, print_path=show)

    asyncio.run(serve())


@modem.command("probe")
@click.option("--port", default=None, help="Serial port (default: [modem] port).")
@click.option(
    "--wait",
    type=click.FloatRange(1, 300),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the modem to register on the network.",
)
@click.pass_context
def modem_probe(ctx: click.Context, port: str | None, wait: float) -> None:
    """Open the modem and report identity, SIM, network, signal and SMS centre.

    It needs the port to itself: stop the daemon first (or read /api/health instead).
    """
    conf = load(ctx).settings.modem
    device = port or conf.port
    if not device:
        fail("no modem port: give --port or set [modem] port")
    from daemon.app.wiring import modem_config
    from providers.modem.driver import PARKED_STATES, ModemDriver, ModemInfo, ModemState

    # The daemon's own record of [modem], with the port and the registration wait given here.
    probing = conf.model_copy(update={"port": device, "registration_timeout_seconds": wait})
    driver = ModemDriver(modem_config(probing))
    settled = {ModemState.READY, *PARKED_STATES, ModemState.NO_NETWORK}

    async def probe() -> tuple[str, str, ModemInfo]:
        await driver.start()
        try:
            await driver.wait_for_state(*settled, timeout=wait + 10)
            return driver.state.value, driver.detail, driver.info
        finally:
            await driver.close()

    state, detail, info = asyncio.run(probe())
    report = {
        "port": device,
        "state": state,
        "detail": detail,
        "modem": info.name,
        "manufacturer": info.manufacturer,
        "model": info.model,
        "firmware": info.revision,
        "imei": info.imei,
        "operator": info.operator,
        "signal_dbm": info.signal_dbm,
        "smsc": info.smsc,
        "registration": info.registration,
    }
    click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    if state != ModemState.READY.value:
        sys.exit(1)
