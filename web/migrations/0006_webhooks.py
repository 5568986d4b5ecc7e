import functools
from json import dumps, loads
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from web.models import DeliveryStatus


class Migration(migrations.Migration):
    dependencies = [("models", "0005_export_key")]

    initial = False

    operations = [
        ops.CreateModel(
            name="WebhookEndpoint",
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
                        related_name="webhook_endpoints",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("url", fields.CharField(max_length=2000)),
                ("description", fields.CharField(default="", max_length=500)),
                (
                    "events",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("enabled", fields.BooleanField(default=True)),
                ("secret_encrypted", fields.TextField(unique=False)),
                ("previous_secret_encrypted", fields.TextField(null=True, unique=False)),
                (
                    "previous_secret_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "webhook_endpoint",
                "app": "models",
                "indexes": [Index(fields=["org_id", "created_at"], name="whe_org_created")],
                "pk_attr": "id",
                "table_description": "Where an org wants recording events sent, signed with its secret (Standard Webhooks).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WebhookDelivery",
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
                        related_name="webhook_deliveries",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "endpoint",
                    fields.ForeignKeyField(
                        "models.WebhookEndpoint",
                        source_field="endpoint_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="deliveries",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("event_id", fields.CharField(max_length=64)),
                ("type", fields.CharField(max_length=50)),
                ("call_id", fields.UUIDField()),
                ("occurred_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "status",
                    fields.CharEnumField(
                        default=DeliveryStatus.PENDING,
                        description="PENDING: pending\nDELIVERED: delivered\nFAILED: failed",
                        enum_type=DeliveryStatus,
                        max_length=20,
                    ),
                ),
                ("attempts", fields.IntField(default=0)),
                ("last_status_code", fields.IntField(null=True)),
                ("last_error", fields.TextField(default="", unique=False)),
                (
                    "next_attempt_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("claimed_by", fields.CharField(null=True, max_length=200)),
                (
                    "claimed_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "delivered_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "webhook_delivery",
                "app": "models",
                "indexes": [
                    Index(fields=["status", "next_attempt_at"], name="whd_status_next"),
                    Index(fields=["endpoint_id", "created_at", "id"], name="whd_endpoint_created"),
                ],
                "pk_attr": "id",
                "table_description": "One event for one endpoint (the outbox row), and how its delivery is going.",
            },
            bases=["Model"],
        ),
    ]
