"""Audit log in independent chains

- audit_events: `chain` (NOT NULL, default 0); `seq` is unique per chain (uq_audit_events_chain_seq
  on (chain, seq) replaces uq_audit_events_seq). Existing entries are chain 0: adding the column
  with a constant default writes no row (PostgreSQL), so the append-only trigger is never asked,
  and their hashes stay valid (`idp.audit.entry_hash` hashes `chain` only when it is not 0).
- audit_chain_head: the row with id c + 1 is chain c's head, so the existing row (id 1) is
  chain 0's and nothing moves. Rows for the other chains are inserted on their first append;
  the PostgreSQL triggers guard UPDATE/DELETE/TRUNCATE only (forward-only per row), unchanged.

Downgrade refuses while entries of a chain other than 0 exist: the old schema has one chain.

Revision ID: 3f1c9a7d2b64
Revises: 925a266315bd
Create Date: 2026-11-24 10:25:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '3f1c9a7d2b64'
down_revision = '925a266315bd'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain', sa.Integer(), nullable=False, server_default='0'))
        batch_op.drop_constraint('uq_audit_events_seq', type_='unique')
        batch_op.create_unique_constraint('uq_audit_events_chain_seq', ['chain', 'seq'])


def downgrade():
    bind = op.get_bind()
    others = bind.execute(sa.text("SELECT count(*) FROM audit_events WHERE chain <> 0")).scalar()
    if others:
        raise RuntimeError(f"{others} audit entries are in chains other than 0: the old schema "
                           "has one chain, so they cannot be kept; refusing to downgrade")
    if bind.dialect.name == "postgresql":  # past the forward-only trigger, this transaction only
        op.execute("SET LOCAL dinhdanh.audit_maintenance = 'on'")
    op.execute("DELETE FROM audit_chain_head WHERE id <> 1")
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint('uq_audit_events_chain_seq', type_='unique')
        batch_op.create_unique_constraint('uq_audit_events_seq', ['seq'])
        batch_op.drop_column('chain')
