"""Hardening: server-side dashboard sessions, and the ``ingest`` role of API keys.

Existing keys keep their role (admin or agent) and its meaning; the role columns are
plain strings, so the new value needs no change to the data.
"""

from typing import Any

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from web.models import Role


class _StateOnlyAlterField(ops.AlterField):
    """Only the recorded state changes (the enum's description): the column is a plain
    string already. On SQLite a real AlterField rebuilds the table, and dropping the old
    ``user`` table would cascade to rows that reference it."""

    async def database_forward(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def database_backward(self, *args: Any, **kwargs: Any) -> None:
        return None


class Migration(migrations.Migration):
    dependencies = [("models", "0006_webhooks")]

    initial = False

    operations = [
        ops.CreateModel(
            name="UserSession",
            fields=[
                (
                    "id",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="sessions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "role",
                    fields.CharEnumField(
                        description="ADMIN: admin\nAGENT: agent\nINGEST: ingest",
                        enum_type=Role,
                        max_length=10,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "expires_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "user_session",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A dashboard sign-in: the cookie carries a random token, the table its hash.",
            },
            bases=["Model"],
        ),
        _StateOnlyAlterField(
            model_name="ApiKey",
            name="role",
            field=fields.CharEnumField(
                default=Role.ADMIN,
                description="ADMIN: admin\nAGENT: agent\nINGEST: ingest",
                enum_type=Role,
                max_length=10,
            ),
        ),
        _StateOnlyAlterField(
            model_name="User",
            name="role",
            field=fields.CharEnumField(
                default=Role.AGENT,
                description="ADMIN: admin\nAGENT: agent\nINGEST: ingest",
                enum_type=Role,
                max_length=10,
            ),
        ),
    ]
