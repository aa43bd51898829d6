"""`shopbell run`: the process around the daemon: its config, its logging, its event loop."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from daemon.app.lifecycle import EXIT_BAD_CONFIG, EXIT_STARTUP_FAILED, Daemon
from daemon.config import ConfigError, Overrides, load_config, secret_values
from daemon.runtime.logs import log_file_path, setup_logging
from daemon.runtime.paths import PathError

log = logging.getLogger(__name__)


def run_daemon(
    config_arg: Path | None, overrides: Overrides, environ: Mapping[str, str] | None = None
) -> int:
    """`shopbell run`: load the config, set up logging, run until stopped; the exit code."""
    try:
        loaded = load_config(config_arg, environ)
        settings = overrides.apply(loaded.settings)
    except ConfigError as exc:
        setup_logging("INFO")
        log.error("%s", exc)
        return EXIT_BAD_CONFIG
    try:
        setup_logging(
            settings.logging.level,
            secret_values(settings),
            file=log_file_path(settings),
            max_bytes=settings.logging.max_bytes,
            backups=settings.logging.backups,
        )
    except PathError as exc:
        setup_logging("INFO", secret_values(settings))
        log.error("cannot start: %s", exc)
        return EXIT_STARTUP_FAILED
    daemon = Daemon(loaded=loaded, config_arg=config_arg, overrides=overrides, environ=environ)
    loop_factory = _loop_factory(settings.api.event_loop)
    # Everything built so far lives as long as the process: frozen, the collector's full
    # passes no longer walk it and stall requests now and then (docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(daemon.run())


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """[api] event_loop: None for Python's own loop, else uvloop's (when it is installed)."""
    if name != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:
        log.warning("[api] event_loop = uvloop, but uvloop is not installed: using asyncio")
        return None
    log.info("event loop: uvloop")
    return uvloop.new_event_loop
