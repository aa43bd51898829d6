"""`python -m daemon` runs the shopbell command (as the console script does)."""

from daemon.admin.cli import main

main()
