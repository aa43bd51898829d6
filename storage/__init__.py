"""Storage: the SQLite file, its one writer thread, migrations and record types."""
