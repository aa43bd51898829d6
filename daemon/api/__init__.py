"""The HTTP API: one FastAPI app, the daemon's front door."""

from daemon.lean import import_fastapi

# Before any module of this package imports FastAPI (daemon/lean.py says what it saves).
import_fastapi()
