import functools
from json import dumps, loads
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from web.models import CallStatus, Direction, MessageRole, Plan, RecordingStatus, Role


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="Org",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("name", fields.CharField(max_length=200)),
                (
                    "plan",
                    fields.CharEnumField(
                        default=Plan.FREE,
                        description="FREE: free\nPRO: pro\nBUSINESS: business\nENTERPRISE: enterprise",
                        enum_type=Plan,
                        max_length=20,
                    ),
                ),
                ("retention_days", fields.IntField(null=True)),
                ("retention_set", fields.BooleanField(default=False)),
                ("bucket_name", fields.CharField(null=True, max_length=63)),
                ("bucket_prefix", fields.CharField(default="", max_length=500)),
                ("bucket_region", fields.CharField(null=True, max_length=50)),
                ("bucket_endpoint_url", fields.CharField(null=True, max_length=500)),
                ("bucket_access_key_id", fields.CharField(null=True, max_length=200)),
                ("bucket_secret_encrypted", fields.TextField(null=True, unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "org",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A customer account on a plan.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ApiKey",
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
                        related_name="api_keys",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(default="", max_length=200)),
                ("prefix", fields.CharField(db_index=True, max_length=16)),
                ("key_hash", fields.CharField(unique=True, max_length=64)),
                (
                    "role",
                    fields.CharEnumField(
                        default=Role.ADMIN,
                        description="ADMIN: admin\nAGENT: agent",
                        enum_type=Role,
                        max_length=10,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "last_used_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "api_key",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A Bearer key for the API: only its hash is stored, its prefix is shown.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Assistant",
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
                        related_name="assistants",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(max_length=200)),
                ("recording_enabled", fields.BooleanField(default=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "assistant",
                "app": "models",
                "pk_attr": "id",
                "table_description": "An AI voice agent of an org.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Call",
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
                        related_name="calls",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "assistant",
                    fields.ForeignKeyField(
                        "models.Assistant",
                        source_field="assistant_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="calls",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "direction",
                    fields.CharEnumField(
                        description="INBOUND: inbound\nOUTBOUND: outbound",
                        enum_type=Direction,
                        max_length=10,
                    ),
                ),
                ("from_number", fields.CharField(max_length=40)),
                ("to_number", fields.CharField(max_length=40)),
                ("from_digits", fields.CharField(default="", max_length=40)),
                ("to_digits", fields.CharField(default="", max_length=40)),
                (
                    "status",
                    fields.CharEnumField(
                        default=CallStatus.IN_PROGRESS,
                        description="IN_PROGRESS: in-progress\nCOMPLETED: completed\nNO_ANSWER: no-answer\nBUSY: busy\nFAILED: failed",
                        enum_type=CallStatus,
                        max_length=20,
                    ),
                ),
                ("started_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("ended_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("duration_ms", fields.BigIntField(null=True)),
                ("recording_enabled", fields.BooleanField()),
                ("has_recording", fields.BooleanField(default=False)),
                ("transcript_text", fields.TextField(default="", unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "call",
                "app": "models",
                "indexes": [
                    Index(fields=["org_id", "started_at", "id"], name="call_org_started"),
                    Index(
                        fields=["org_id", "assistant_id", "started_at"], name="call_org_assistant"
                    ),
                    Index(fields=["org_id", "status", "started_at"], name="call_org_status"),
                    Index(
                        fields=["org_id", "has_recording", "started_at"], name="call_org_has_rec"
                    ),
                ],
                "pk_attr": "id",
                "table_description": "One phone conversation handled by an assistant.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Analysis",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "call",
                    fields.OneToOneField(
                        "models.Call",
                        source_field="call_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="analysis",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("summary", fields.TextField(default="", unique=False)),
                ("success", fields.BooleanField(null=True)),
                (
                    "data",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
            ],
            options={
                "table": "analysis",
                "app": "models",
                "pk_attr": "id",
                "table_description": "The post-call analysis: summary, success, structured data.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Message",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "call",
                    fields.ForeignKeyField(
                        "models.Call",
                        source_field="call_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="messages",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("seq", fields.IntField()),
                (
                    "role",
                    fields.CharEnumField(
                        description="USER: user\nASSISTANT: assistant\nSYSTEM: system",
                        enum_type=MessageRole,
                        max_length=10,
                    ),
                ),
                ("text", fields.TextField(unique=False)),
                ("start_ms", fields.BigIntField()),
                ("end_ms", fields.BigIntField()),
            ],
            options={
                "table": "message",
                "app": "models",
                "unique_together": (("call", "seq"),),
                "pk_attr": "id",
                "table_description": "One turn of a call's transcript.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Recording",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "call",
                    fields.OneToOneField(
                        "models.Call",
                        source_field="call_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="recording",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "org",
                    fields.ForeignKeyField(
                        "models.Org",
                        source_field="org_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="recordings",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=RecordingStatus.RECORDING,
                        description="RECORDING: recording\nPROCESSING: processing\nAVAILABLE: available\nFAILED: failed\nPURGED: purged\nDELETED: deleted",
                        enum_type=RecordingStatus,
                        max_length=20,
                    ),
                ),
                ("storage_target", fields.CharField(default="platform", max_length=20)),
                ("storage_bucket", fields.CharField(default="", max_length=200)),
                ("storage_key", fields.CharField(default="", max_length=500)),
                ("peaks_key", fields.CharField(default="", max_length=500)),
                ("duration_ms", fields.BigIntField(null=True)),
                ("size_bytes", fields.BigIntField(null=True)),
                ("sha256", fields.CharField(null=True, max_length=64)),
                ("purge_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("legal_hold", fields.BooleanField(default=False)),
                ("spool_path", fields.CharField(default="", max_length=1000)),
                ("spool_node", fields.CharField(default="", max_length=200)),
                (
                    "last_activity_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("upload_attempts", fields.IntField(default=0)),
                (
                    "next_attempt_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("last_error", fields.TextField(default="", unique=False)),
                ("claimed_by", fields.CharField(null=True, max_length=200)),
                (
                    "claimed_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("multipart_upload_id", fields.CharField(null=True, max_length=1000)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "available_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("purged_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("deleted_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "recording",
                "app": "models",
                "indexes": [
                    Index(fields=["status", "next_attempt_at"], name="rec_status_next"),
                    Index(fields=["status", "purge_at"], name="rec_status_purge"),
                ],
                "pk_attr": "id",
                "table_description": "The stereo MP3 of a call and its peaks, wherever they are stored.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="User",
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
                        related_name="users",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("email", fields.CharField(unique=True, max_length=320)),
                ("password_hash", fields.CharField(max_length=200)),
                (
                    "role",
                    fields.CharEnumField(
                        default=Role.AGENT,
                        description="ADMIN: admin\nAGENT: agent",
                        enum_type=Role,
                        max_length=10,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "last_login_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "user",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A person who signs in to the dashboard.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AuditEvent",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "org",
                    fields.ForeignKeyField(
                        "models.Org",
                        source_field="org_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="audit_events",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "call",
                    fields.ForeignKeyField(
                        "models.Call",
                        source_field="call_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="audit_events",
                        on_delete=OnDelete.SET_NULL,
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
                        related_name="audit_events",
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
                        related_name="audit_events",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("action", fields.CharField(max_length=50)),
                ("actor", fields.CharField(default="", max_length=320)),
                (
                    "detail",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "created_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True),
                ),
            ],
            options={
                "table": "audit_event",
                "app": "models",
                "indexes": [
                    Index(fields=["org_id", "call_id", "created_at"], name="audit_org_call")
                ],
                "pk_attr": "id",
                "table_description": "Who did what to which recording, when.",
            },
            bases=["Model"],
        ),
    ]
