"""telephony: call sources (PBXs and cloud services), their extensions, drop-folder cursors and import
reports, and the calls

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 13:31:14

A call is unique per source on the source's own call key, so every import is idempotent.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('call_source',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('format', sa.String(length=20), nullable=False),
    sa.Column('region', sa.String(length=2), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('fields', sa.Text(), nullable=False),
    sa.Column('strip_prefixes', sa.String(length=100), nullable=False),
    sa.Column('secret_encrypted', sa.Text(), nullable=False),
    sa.Column('drop_folder', sa.String(length=500), nullable=False),
    sa.Column('poll_interval_seconds', sa.Integer(), nullable=False),
    sa.Column('missed_call_activities', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_import_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=80), nullable=False),
    sa.Column('progress_done', sa.BigInteger(), nullable=False),
    sa.Column('progress_total', sa.BigInteger(), nullable=False),
    sa.Column('last_progress_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('calls_imported', sa.BigInteger(), nullable=False),
    sa.Column('rows_rejected', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_source')),
    sa.UniqueConstraint('name', name=op.f('uq_call_source_name'))
    )
    with op.batch_alter_table('call_source', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_source_next_attempt_at'), ['next_attempt_at'], unique=False)

    op.create_table('call_extension',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('extension', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['call_source.id'], name=op.f('fk_call_extension_source_id_call_source'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_call_extension_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_extension')),
    sa.UniqueConstraint('source_id', 'extension', name='uq_call_extension_source_extension')
    )
    with op.batch_alter_table('call_extension', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_extension_user_id'), ['user_id'], unique=False)

    op.create_table('call_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('line', sa.BigInteger(), nullable=False),
    sa.Column('head', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['call_source.id'], name=op.f('fk_call_file_source_id_call_source'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_file')),
    sa.UniqueConstraint('source_id', 'path', name='uq_call_file_source_path')
    )
    op.create_table('call_import',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=500), nullable=False),
    sa.Column('blob_sha256', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rows', sa.BigInteger(), nullable=False),
    sa.Column('imported', sa.BigInteger(), nullable=False),
    sa.Column('known', sa.BigInteger(), nullable=False),
    sa.Column('matched', sa.BigInteger(), nullable=False),
    sa.Column('rejected', sa.BigInteger(), nullable=False),
    sa.Column('errors', sa.Text(), nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=80), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_call_import_created_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_id'], ['call_source.id'], name=op.f('fk_call_import_source_id_call_source'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_import'))
    )
    with op.batch_alter_table('call_import', schema=None) as batch_op:
        batch_op.create_index('ix_call_import_source_started', ['source_id', 'started_at'], unique=False)

    op.create_table('call',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('call_key', sa.String(length=200), nullable=False),
    sa.Column('direction', sa.String(length=10), nullable=False),
    sa.Column('number', sa.String(length=80), nullable=False),
    sa.Column('e164', sa.String(length=20), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration', sa.Integer(), nullable=False),
    sa.Column('billsec', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('extension', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('recording_url', sa.String(length=1000), nullable=False),
    sa.Column('legs', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('relation_id', sa.Integer(), nullable=True),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('callback_activity_id', sa.Integer(), nullable=True),
    sa.Column('stored_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['callback_activity_id'], ['activity.id'], name=op.f('fk_call_callback_activity_id_activity'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name=op.f('fk_call_contact_id_contact'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_call_project_id_project'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['relation_id'], ['relation.id'], name=op.f('fk_call_relation_id_relation'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_id'], ['call_source.id'], name=op.f('fk_call_source_id_call_source'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_call_user_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call')),
    sa.UniqueConstraint('source_id', 'call_key', name='uq_call_source_call_key')
    )
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_callback_activity_id'), ['callback_activity_id'], unique=False)
        batch_op.create_index('ix_call_contact_started', ['contact_id', 'started_at'], unique=False)
        batch_op.create_index('ix_call_e164_started', ['e164', 'started_at'], unique=False)
        batch_op.create_index('ix_call_project_started', ['project_id', 'started_at'], unique=False)
        batch_op.create_index('ix_call_relation_started', ['relation_id', 'started_at'], unique=False)
        batch_op.create_index('ix_call_started_at', ['started_at'], unique=False)
        batch_op.create_index('ix_call_user_started', ['user_id', 'started_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index('ix_call_user_started')
        batch_op.drop_index('ix_call_started_at')
        batch_op.drop_index('ix_call_relation_started')
        batch_op.drop_index('ix_call_project_started')
        batch_op.drop_index('ix_call_e164_started')
        batch_op.drop_index('ix_call_contact_started')
        batch_op.drop_index(batch_op.f('ix_call_callback_activity_id'))

    op.drop_table('call')
    with op.batch_alter_table('call_import', schema=None) as batch_op:
        batch_op.drop_index('ix_call_import_source_started')

    op.drop_table('call_import')
    op.drop_table('call_file')
    with op.batch_alter_table('call_extension', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_extension_user_id'))

    op.drop_table('call_extension')
    with op.batch_alter_table('call_source', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_source_next_attempt_at'))

    op.drop_table('call_source')
