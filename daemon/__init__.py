"""The shopbell daemon: CLI, configuration, lifecycle, services and the HTTP API."""

__version__ = "0.1.0"
