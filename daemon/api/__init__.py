"""The HTTP API: one FastAPI app, the daemon's front door."""
