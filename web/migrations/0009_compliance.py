"""Keypad-tone redaction: the assistant's switch, its snapshot on a call, a recording's spans."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0007_export_key")]

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
    ]
