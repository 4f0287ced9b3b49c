"""Telephony: call records from the PBX land in the Calls tab, matched by number; caller-ID lookup."""
