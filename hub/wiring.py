"""Which capabilities listen to the CRM core's announcements (hub.crm.events): wired here, once."""

from __future__ import annotations

from hub.crm.events import AddressesAdded, subscribe
from hub.mail.links import link_mail_of_new_addresses

subscribe(AddressesAdded, link_mail_of_new_addresses)
