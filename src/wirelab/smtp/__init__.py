"""SMTP (chapter 13): the lab mail host's server on aiosmtpd, and a client on smtplib."""
