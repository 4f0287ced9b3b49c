"""Outbound webhooks: hub tells other systems what changed.

- :mod:`hub.webhooks.catalog` the events a subscription can ask for, and what each one's body holds;
- :mod:`hub.webhooks.outbox` hears the CRM core (hub.crm.events) and writes a delivery per
  subscription that may see the object, in the same transaction as the change;
- :mod:`hub.webhooks.delivery` signs and sends a delivery (claimed, pinned to a checked address),
  retries it with backoff and logs every attempt;
- :mod:`hub.webhooks.subscriptions` what the settings pages call.
"""
