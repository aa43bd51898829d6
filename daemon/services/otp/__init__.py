"""One-time passwords by SMS: pure rules (`policy`), the server key (`key`), the service."""
