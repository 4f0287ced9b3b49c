"""Mailbox sync: IMAP mailboxes flow into the E-mails tab of the right relation and project."""
