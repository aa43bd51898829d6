"""The process's plumbing, no shop logic: clock, paths, lock, logs, systemd, the shared HTTP
client, the scheduler."""
