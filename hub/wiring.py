"""Which capabilities listen to the CRM core's announcements (hub.crm.events): wired here, once."""

from __future__ import annotations

from hub.calendar.appointments import withdraw_with_deleted_record
from hub.calendar.imip import replies_of_linked_mail
from hub.campaigns.bounces import on_emails_stored
from hub.crm.events import AddressesAdded, EmailsLinked, EmailsStored, NumbersAdded, RecordChanged, subscribe
from hub.mail.links import link_mail_of_new_addresses
from hub.telephony.links import link_calls_of_new_numbers
from hub.webhooks.outbox import record_change, record_links

subscribe(AddressesAdded, link_mail_of_new_addresses)
subscribe(NumbersAdded, link_calls_of_new_numbers)
subscribe(RecordChanged, record_change)
subscribe(EmailsLinked, record_links)
# Replies to invitations (iMIP METHOD:REPLY) that mail sync stored set the attendee's answer.
subscribe(EmailsLinked, replies_of_linked_mail)
# A deleted project's or relation's appointments are taken out of the staff calendars, not left there.
subscribe(RecordChanged, withdraw_with_deleted_record)
# Bounces, complaints and replies to mailings that mail sync stored count on the mailing's ledger.
subscribe(EmailsStored, on_emails_stored)
