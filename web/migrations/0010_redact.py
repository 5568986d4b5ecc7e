"""Objects a redaction replaced, kept on a list until the worker has deleted them."""

from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0009_compliance")]

    initial = False

    operations = [
        ops.CreateModel(
            name="StaleObject",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "org",
                    fields.ForeignKeyField(
                        "models.Org",
                        source_field="org_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="stale_objects",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("storage_target", fields.CharField(max_length=20)),
                ("storage_bucket", fields.CharField(default="", max_length=200)),
                ("key", fields.CharField(max_length=500)),
                ("reason", fields.CharField(default="redacted", max_length=50)),
                ("attempts", fields.IntField(default=0)),
                ("last_error", fields.TextField(default="", unique=False)),
                (
                    "next_attempt_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "stale_object",
                "app": "models",
                "indexes": [Index(fields=["next_attempt_at"], name="stale_next")],
                "pk_attr": "id",
                "table_description": "A stored object that must go (the bytes a redaction replaced), until it is gone.",
            },
            bases=["Model"],
        ),
    ]
