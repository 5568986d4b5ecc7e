from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0004_call_search_tsv")]

    initial = False

    operations = [
        ops.CreateModel(
            name="OrgExportKey",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "org",
                    fields.OneToOneField(
                        "models.Org",
                        source_field="org_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="export_key",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("public_key", fields.CharField(max_length=64)),
                ("private_key_encrypted", fields.TextField(unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "org_export_key",
                "app": "models",
                "pk_attr": "id",
                "table_description": "The Ed25519 key that signs an org's export manifests (the private half encrypted).",
            },
            bases=["Model"],
        ),
    ]
