"""Modal dialogs that dismiss with a typed result."""
