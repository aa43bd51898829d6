"""Care of the data and of the owner: nightly backups, retention, free disk, provider
outages. Each part runs from a scheduled job (daemon/app/jobs.py)."""
