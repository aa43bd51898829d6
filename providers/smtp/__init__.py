"""SMTP: e-mail through the shop's own mail server (aiosmtplib, STARTTLS or TLS)."""

from providers.smtp.provider import SmtpProvider, email_body

__all__ = ["SmtpProvider", "email_body"]
