"""What the shop's messages do: each service takes its slice of the settings, the database and
the clock. HTTP, wiring and the process's plumbing live elsewhere."""
