"""Topics slugged the new way (combining marks belong to their letter) and the calendar day
of items dated without a time (issue 18).

Stored topics (items' and subscribers' choices) go through the new slug function: a topic
an older import kept as written ('आर्थिक न्याय') becomes its slug, duplicates merge, and no
choice is dropped. A topic an earlier version had already slugged with the marks cut out
('आरथ-क-नय-य') cannot be turned back into its words here; it is kept as it is, and still
follows its audience (store.subscribers.follows matches such old slugs), while items get
their new slugs when their source is collected again.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from publisher.support.slug import slugify

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def _reslug(table: str, key_type: sa.types.TypeEngine) -> None:
    rows = sa.table(table, sa.column("id", key_type), sa.column("topics", sa.JSON))
    connection = op.get_bind()
    changes = []
    for row_id, topics in connection.execute(sa.select(rows.c.id, rows.c.topics)):
        if not isinstance(topics, list):
            continue
        # a topic with no letter left is kept as written: dropping it could turn a list
        # into the empty one, which means "every topic"
        new = list(dict.fromkeys(slugify(t) or t if isinstance(t, str) else t for t in topics))
        if new != topics:
            changes.append({"key": row_id, "new_topics": new})
    if changes:
        statement = (
            sa.update(rows)
            .where(rows.c.id == sa.bindparam("key"))
            .values(topics=sa.bindparam("new_topics", type_=sa.JSON))
        )
        connection.execute(statement, changes)


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("day", sa.Date, nullable=True))
    _reslug("items", sa.String(512))
    _reslug("subscribers", sa.Integer())


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("day")
