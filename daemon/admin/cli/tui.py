"""`shopbell tui`: open the terminal UI on a daemon (the one place the daemon reaches the TUI)."""

from __future__ import annotations

import click

from daemon.admin.cli.base import fail, load
from daemon.runtime.paths import PathError


@click.command("tui")
@click.option("--url", default=None, help="The daemon's URL (overrides [tui] url).")
@click.option("--token", default=None, help="Its API token (overrides [tui] token).")
@click.pass_context
def tui_command(ctx: click.Context, url: str | None, token: str | None) -> None:
    """Open the shopkeeper's terminal UI on the daemon (this machine's unless told otherwise).

    When a local daemon is not running, the app says so and offers to start it.
    """
    from daemon.admin.tui_target import TargetError, resolve_target, start_local_daemon

    loaded = load(ctx)
    try:
        target = resolve_target(loaded.settings, url, token)
    except (TargetError, PathError) as exc:
        fail(str(exc))
    # The one place the daemon's package reaches the TUI (the composition root).
    from tui.app import ShopbellApp
    from tui.client import ApiClient

    def start() -> str:
        return start_local_daemon(loaded.settings, ctx.obj["config"])

    app = ShopbellApp(
        ApiClient(target.url, target.token),
        local=target.local,
        start_daemon=start if target.local else None,
    )
    app.run()
