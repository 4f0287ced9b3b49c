"""A ledger mark that PostgreSQL can write in place

Revision ID: 0016
Revises: 0015

Every recipient's ledger row is updated twice while a mailing goes out (claimed, then marked sent).
With ``status`` in the work index and ``message_id`` indexed, each update wrote a new entry into
every index of the table; now no index holds a column those updates change, so PostgreSQL updates
the row in place on its own page (a HOT update), which the table's fill factor leaves room for.
Measured on one connection: 119 → 61 µs of database server time a recipient.

* the work index (mailing, status, id) becomes (mailing, id): a run claims the rows after the
  last one it claimed;
* the Message-ID index goes: a hub Message-ID names its ledger row (``<row.mailing.mac.hub@…>``),
  which is looked up by its primary key and compared;
* PostgreSQL: fill factor 70 (new pages of the ledger keep 30 % free for the updated rows).
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_mailing_recipient_work", table_name="mailing_recipient")
    op.drop_index("ix_mailing_recipient_message_id", table_name="mailing_recipient")
    op.create_index("ix_mailing_recipient_work", "mailing_recipient", ["mailing_id", "id"], unique=False)
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE mailing_recipient SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE mailing_recipient RESET (fillfactor)")
    op.drop_index("ix_mailing_recipient_work", table_name="mailing_recipient")
    op.create_index("ix_mailing_recipient_message_id", "mailing_recipient", ["message_id"], unique=False)
    op.create_index("ix_mailing_recipient_work", "mailing_recipient", ["mailing_id", "status", "id"], unique=False)
