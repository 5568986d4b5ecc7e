"""Call review: notes pinned to moments, a call's campaign, and a user's zone and speed."""

from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0007_hardening")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Call", name="campaign", field=fields.CharField(null=True, max_length=100)
        ),
        ops.AddIndex(
            model_name="Call",
            index=Index(fields=["org_id", "campaign", "started_at"], name="call_org_campaign"),
        ),
        ops.AddField(
            model_name="User", name="time_zone", field=fields.CharField(null=True, max_length=64)
        ),
        ops.AddField(
            model_name="User",
            name="playback_speed",
            field=fields.CharField(null=True, max_length=8),
        ),
        ops.CreateModel(
            name="Note",
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
                        related_name="notes",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "call",
                    fields.ForeignKeyField(
                        "models.Call",
                        source_field="call_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="notes",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="user_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="notes",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                (
                    "api_key",
                    fields.ForeignKeyField(
                        "models.ApiKey",
                        source_field="api_key_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="notes",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("author", fields.CharField(max_length=320)),
                ("at_ms", fields.BigIntField()),
                ("text", fields.TextField(unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "note",
                "app": "models",
                "pk_attr": "id",
                "indexes": [Index(fields=["call_id", "at_ms"], name="note_call_at")],
                "table_description": "A remark pinned to a moment of a call, shown to everyone of the org.",
            },
            bases=["Model"],
        ),
    ]
