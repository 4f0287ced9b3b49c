"""Which capabilities listen to the CRM core's announcements (hub.crm.events): wired here, once."""

from __future__ import annotations

from hub.crm.events import AddressesAdded, EmailsLinked, NumbersAdded, RecordChanged, subscribe
from hub.mail.links import link_mail_of_new_addresses
from hub.telephony.links import link_calls_of_new_numbers
from hub.webhooks.outbox import record_change, record_links

subscribe(AddressesAdded, link_mail_of_new_addresses)
subscribe(NumbersAdded, link_calls_of_new_numbers)
subscribe(RecordChanged, record_change)
subscribe(EmailsLinked, record_links)
