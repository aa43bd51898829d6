"""The composition root: wiring that builds every provider and service from the settings, the
one table of scheduled jobs, and the lifecycle (start order, stop stages, signals)."""
