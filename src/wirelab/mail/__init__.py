"""E-mail (chapter 12) and the lab mail host's store (chapters 13-15).

:mod:`wirelab.mail.messages` builds and reads messages with the stdlib policy API;
:mod:`wirelab.mail.store` is the durable Maildir store and the hashed accounts the SMTP, POP3
and IMAP servers share; :mod:`wirelab.mail.seed` fills it like the book's playground mailbox.
"""
