"""Calendar: appointments, and keeping them in the staff's own calendars (CalDAV push and pull back,
iMIP invitations for Outlook, a private ICS feed)."""
