"""The HTTP API: one FastAPI app, the daemon's front door."""

from daemon.runtime.lean import import_fastapi

# Before any module of this package imports FastAPI (daemon/runtime/lean.py says what it saves).
import_fastapi()
