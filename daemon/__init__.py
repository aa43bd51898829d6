"""The shopbell daemon: CLI, configuration, lifecycle, services and the HTTP API."""

from daemon.runtime.lean import skip_unused_imports

__version__ = "0.1.0"

# First thing in every shopbell process: `shopbell` and `python -m daemon` import this
# package before anything imports httpx or FastAPI.
skip_unused_imports()
