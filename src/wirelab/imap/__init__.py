"""IMAP (chapter 15): the lab server on pymap over the mail store, and a client on IMAPClient."""
