"""The console provider: prints messages instead of sending them."""
