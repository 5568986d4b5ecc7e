"""Compliance: keypad-tone redaction (switch, call snapshot, spans), pauses, own KMS key."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0008_review")]

    initial = False

    # Database defaults, so rows written before the columns existed get them too.
    operations = [
        ops.AddField(
            model_name="Assistant",
            name="redact_dtmf",
            field=fields.BooleanField(default=True, db_default=True),
        ),
        ops.AddField(
            model_name="Call",
            name="redact_dtmf",
            field=fields.BooleanField(default=True, db_default=True),
        ),
        ops.AddField(
            model_name="Recording",
            name="redactions",
            field=fields.JSONField(default=list, db_default=[]),
        ),
        ops.AddField(
            model_name="Recording",
            name="pause_requested",
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name="Recording",
            name="pause_version",
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name="Recording",
            name="pause_applied",
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name="Recording",
            name="pauses",
            field=fields.JSONField(default=list, db_default=[]),
        ),
        ops.AddField(
            model_name="Org",
            name="bucket_kms_key_id",
            field=fields.CharField(max_length=2048, null=True),
        ),
    ]
