"""The shopkeeper's terminal UI; it talks to the daemon over HTTP only."""
