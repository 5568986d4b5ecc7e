"""ORM models: the one shared vocabulary of ``web/``."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class Plan(StrEnum):
    FREE = "free"
    PRO = "pro"
    BUSINESS = "business"
    ENTERPRISE = "enterprise"


class Role(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"
    # API keys only: what a voice pipeline needs (create/end calls, media, uploads).
    INGEST = "ingest"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class CallStatus(StrEnum):
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED = "failed"


class RecordingStatus(StrEnum):
    RECORDING = "recording"
    PROCESSING = "processing"
    AVAILABLE = "available"
    FAILED = "failed"
    PURGED = "purged"
    DELETED = "deleted"


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


class Org(Model):
    """A customer account on a plan."""

    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=200)
    plan = fields.CharEnumField(Plan, max_length=20, default=Plan.FREE)
    # Enterprise only: None means "keep forever" when retention_set is true.
    retention_days = fields.IntField(null=True)
    retention_set = fields.BooleanField(default=False)
    bucket_name = fields.CharField(max_length=63, null=True)
    bucket_prefix = fields.CharField(max_length=500, default="")
    bucket_region = fields.CharField(max_length=50, null=True)
    bucket_endpoint_url = fields.CharField(max_length=500, null=True)
    bucket_access_key_id = fields.CharField(max_length=200, null=True)
    bucket_secret_encrypted = fields.TextField(null=True)
    # SSE-KMS key (id, ARN or alias) every object in the own bucket is written under.
    bucket_kms_key_id = fields.CharField(max_length=2048, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "org"


class User(Model):
    """A person who signs in to the dashboard."""

    id = fields.UUIDField(primary_key=True)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "models.Org", related_name="users", on_delete=fields.CASCADE
    )
    email = fields.CharField(max_length=320, unique=True)
    password_hash = fields.CharField(max_length=200)
    role = fields.CharEnumField(Role, max_length=10, default=Role.AGENT)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_login_at = fields.DatetimeField(null=True)
    # Preferences: an IANA zone (None: the browser's) and the player's speed (None: 1x).
    time_zone = fields.CharField(max_length=64, null=True)
    playback_speed = fields.CharField(max_length=8, null=True)

    class Meta:
        table = "user"


class UserSession(Model):
    """A dashboard sign-in: the cookie carries a random token, the table its hash."""

    id = fields.CharField(max_length=64, primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE
    )
    # The user's role at sign-in: a later role change ends the session.
    role = fields.CharEnumField(Role, max_length=10)
    created_at = fields.DatetimeField()
    # Absolute: sign-in time plus the lifetime, never extended by use.
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "user_session"


class ApiKey(Model):
    """A Bearer key for the API: only its hash is stored, its prefix is shown."""

    id = fields.UUIDField(primary_key=True)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "models.Org", related_name="api_keys", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200, default="")
    prefix = fields.CharField(max_length=16, db_index=True)
    key_hash = fields.CharField(max_length=64, unique=True)
    role = fields.CharEnumField(Role, max_length=10, default=Role.ADMIN)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_key"


class Assistant(Model):
    """An AI voice agent of an org."""

    id = fields.UUIDField(primary_key=True)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "models.Org", related_name="assistants", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    recording_enabled = fields.BooleanField(default=True)
    # Keypad tones (card numbers, PINs) are silenced before they reach the encoder.
    redact_dtmf = fields.BooleanField(default=True, db_default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "assistant"


class Call(Model):
    """One phone conversation handled by an assistant."""

    id = fields.UUIDField(primary_key=True)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "models.Org", related_name="calls", on_delete=fields.CASCADE
    )
    assistant: fields.ForeignKeyRelation[Assistant] = fields.ForeignKeyField(
        "models.Assistant", related_name="calls", on_delete=fields.CASCADE
    )
    direction = fields.CharEnumField(Direction, max_length=10)
    from_number = fields.CharField(max_length=40)
    to_number = fields.CharField(max_length=40)
    # Digits only, so a phone filter ignores "+", spaces and dashes.
    from_digits = fields.CharField(max_length=40, default="")
    to_digits = fields.CharField(max_length=40, default="")
    status = fields.CharEnumField(CallStatus, max_length=20, default=CallStatus.IN_PROGRESS)
    started_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)
    duration_ms = fields.BigIntField(null=True)
    # The assistant's setting at the moment the call started; later toggles do not change it.
    recording_enabled = fields.BooleanField()
    # Likewise the assistant's keypad-tone redaction when the call started.
    redact_dtmf = fields.BooleanField(default=True, db_default=True)
    has_recording = fields.BooleanField(default=False)
    transcript_text = fields.TextField(default="")
    campaign = fields.CharField(max_length=100, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "call"
        indexes = (
            Index(fields=("org_id", "campaign", "started_at"), name="call_org_campaign"),
            Index(fields=("org_id", "started_at", "id"), name="call_org_started"),
            Index(fields=("org_id", "assistant_id", "started_at"), name="call_org_assistant"),
            Index(fields=("org_id", "status", "started_at"), name="call_org_status"),
            Index(fields=("org_id", "has_recording", "started_at"), name="call_org_has_rec"),
        )


class Recording(Model):
    """The stereo MP3 of a call and its peaks, wherever they are stored."""

    id = fields.UUIDField(primary_key=True)
    call: fields.OneToOneRelation[Call] = fields.OneToOneField(
        "models.Call", related_name="recording", on_delete=fields.CASCADE
    )
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "models.Org", related_name="recordings", on_delete=fields.CASCADE
    )
    status = fields.CharEnumField(RecordingStatus, max_length=20, default=RecordingStatus.RECORDING)
    # "platform" or "org": which bucket configuration holds the objects.
    storage_target = fields.CharField(max_length=20, default="platform")
    storage_bucket = fields.CharField(max_length=200, default="")
    storage_key = fields.CharField(max_length=500, default="")
    peaks_key = fields.CharField(max_length=500, default="")
    duration_ms = fields.BigIntField(null=True)
    size_bytes = fields.BigIntField(null=True)
    sha256 = fields.CharField(max_length=64, null=True)
    purge_at = fields.DatetimeField(null=True)
    legal_hold = fields.BooleanField(default=False)
    # Spans silenced in the stored audio: [{"start_ms", "end_ms", "channel", "reason"}].
    redactions: list[dict[str, Any]] = fields.JSONField(default=list, db_default=[])
    # Pause of a live stream: the API writes the wish and bumps the version; the process
    # holding the stream applies it, notes the version it applied and the spans.
    pause_requested = fields.BooleanField(default=False, db_default=False)
    pause_version = fields.IntField(default=0, db_default=0)
    pause_applied = fields.IntField(default=0, db_default=0)
    pauses: list[dict[str, Any]] = fields.JSONField(default=list, db_default=[])
    # Live / recovery bookkeeping: which process holds the spool, and upload retries.
    spool_path = fields.CharField(max_length=1000, default="")
    spool_node = fields.CharField(max_length=200, default="")
    last_activity_at = fields.DatetimeField(null=True)
    upload_attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True)
    last_error = fields.TextField(default="")
    claimed_by = fields.CharField(max_length=200, null=True)
    claimed_until = fields.DatetimeField(null=True)
    multipart_upload_id = fields.CharField(max_length=1000, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    available_at = fields.DatetimeField(null=True)
    purged_at = fields.DatetimeField(null=True)
    deleted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "recording"
        indexes = (
            Index(fields=("status", "next_attempt_at"), name="rec_status_next"),
            Index(fields=("status", "purge_at"), name="rec_status_purge"),
        )


class Message(Model):
    """One turn of a call's transcript."""

    id = fields.BigIntField(primary_key=True)
    call: fields.ForeignKeyRelation[Call] = fields.ForeignKeyField(
        "models.Call", related_name="messages", on_delete=fields.CASCADE
    )
    seq = fields.IntField()
    role = fields.CharEnumField(MessageRole, max_length=10)
    text = fields.TextField()
    start_ms = fields.BigIntField()
    end_ms = fields.BigIntField()

    class Meta:
        table = "message"
        unique_together = (("call", "seq"),)


class Analysis(Model):
    """The post-call analysis: summary, success, structured data."""

    id = fields.BigIntField(primary_key=True)
    call: fields.OneToOneRelation[Call] = fields.OneToOneField(
        "models.Call", related_name="analysis", on_delete=fields.CASCADE
    )
    summary = fields.TextField(default="")
    success = fields.BooleanField(null=True)
    data: dict[str, Any] = fields.JSONField(default=dict)

    class Meta:
        table = "analysis"


class Note(Model):
    """A remark pinned to a moment of a call, shown to everyone of the org."""

    id = fields.UUIDField(primary_key=True)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "models.Org", related_name="notes", on_delete=fields.CASCADE
    )
    call: fields.ForeignKeyRelation[Call] = fields.ForeignKeyField(
        "models.Call", related_name="notes", on_delete=fields.CASCADE
    )
    # Who wrote it: a user or an API key (the other is null); ``author`` is what is shown.
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="notes", null=True, on_delete=fields.SET_NULL
    )
    api_key: fields.ForeignKeyNullableRelation[ApiKey] = fields.ForeignKeyField(
        "models.ApiKey", related_name="notes", null=True, on_delete=fields.SET_NULL
    )
    author = fields.CharField(max_length=320)
    at_ms = fields.BigIntField()
    text = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "note"
        indexes = (Index(fields=("call_id", "at_ms"), name="note_call_at"),)


class AuditEvent(Model):
    """Who did what to which recording, when."""

    id = fields.BigIntField(primary_key=True)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "models.Org", related_name="audit_events", on_delete=fields.CASCADE
    )
    call: fields.ForeignKeyNullableRelation[Call] = fields.ForeignKeyField(
        "models.Call", related_name="audit_events", null=True, on_delete=fields.SET_NULL
    )
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="audit_events", null=True, on_delete=fields.SET_NULL
    )
    api_key: fields.ForeignKeyNullableRelation[ApiKey] = fields.ForeignKeyField(
        "models.ApiKey", related_name="audit_events", null=True, on_delete=fields.SET_NULL
    )
    # e.g. "recording.listen", "recording.download", "recording.delete", "recording.purge".
    action = fields.CharField(max_length=50)
    actor = fields.CharField(max_length=320, default="")
    detail: dict[str, Any] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "audit_event"
        indexes = (Index(fields=("org_id", "call_id", "created_at"), name="audit_org_call"),)


class StaleObject(Model):
    """A stored object that must go (the bytes a redaction replaced), until it is gone.

    Written in the same transaction that moves the recording off it, so a failed or
    interrupted deletion is retried by the worker, every older version included.
    """

    id = fields.UUIDField(primary_key=True)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "models.Org", related_name="stale_objects", on_delete=fields.CASCADE
    )
    # Where it is: as on Recording ("platform" or "org", and the bucket's name).
    storage_target = fields.CharField(max_length=20)
    storage_bucket = fields.CharField(max_length=200, default="")
    key = fields.CharField(max_length=500)
    reason = fields.CharField(max_length=50, default="redacted")
    attempts = fields.IntField(default=0)
    last_error = fields.TextField(default="")
    next_attempt_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "stale_object"
        indexes = (Index(fields=("next_attempt_at",), name="stale_next"),)


class RateCounter(Model):
    """A fixed-window request counter, shared by every web process through the database."""

    # A hash of what is counted (e.g. the login email or the client address), never the value.
    key = fields.CharField(max_length=64, primary_key=True)
    # Unix milliseconds: compared in SQL the same way on SQLite and PostgreSQL.
    window_start_ms = fields.BigIntField()
    count = fields.IntField(default=0)

    class Meta:
        table = "rate_counter"


class OrgExportKey(Model):
    """The Ed25519 key that signs an org's export manifests (the private half encrypted)."""

    id = fields.UUIDField(primary_key=True)
    org: fields.OneToOneRelation[Org] = fields.OneToOneField(
        "models.Org", related_name="export_key", on_delete=fields.CASCADE
    )
    # The raw 32-byte public key, base64.
    public_key = fields.CharField(max_length=64)
    # The raw 32-byte private key, base64, encrypted with the secret key (web.security).
    private_key_encrypted = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "org_export_key"


class WebhookEndpoint(Model):
    """Where an org wants recording events sent, signed with its secret (Standard Webhooks)."""

    id = fields.UUIDField(primary_key=True)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "models.Org", related_name="webhook_endpoints", on_delete=fields.CASCADE
    )
    url = fields.CharField(max_length=2000)
    description = fields.CharField(max_length=500, default="")
    events: list[str] = fields.JSONField(default=list)
    enabled = fields.BooleanField(default=True)
    secret_encrypted = fields.TextField()
    # After a roll the previous secret still signs (beside the new one) until this time.
    previous_secret_encrypted = fields.TextField(null=True)
    previous_secret_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "webhook_endpoint"
        indexes = (Index(fields=("org_id", "created_at"), name="whe_org_created"),)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(Model):
    """One event for one endpoint (the outbox row), and how its delivery is going."""

    id = fields.UUIDField(primary_key=True)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "models.Org", related_name="webhook_deliveries", on_delete=fields.CASCADE
    )
    endpoint: fields.ForeignKeyRelation[WebhookEndpoint] = fields.ForeignKeyField(
        "models.WebhookEndpoint", related_name="deliveries", on_delete=fields.CASCADE
    )
    # The ``webhook-id`` header: one per state change, the same on every attempt.
    event_id = fields.CharField(max_length=64)
    type = fields.CharField(max_length=50)
    call_id = fields.UUIDField()
    occurred_at = fields.DatetimeField()
    status = fields.CharEnumField(DeliveryStatus, max_length=20, default=DeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    last_status_code = fields.IntField(null=True)
    last_error = fields.TextField(default="")
    next_attempt_at = fields.DatetimeField(null=True)
    claimed_by = fields.CharField(max_length=200, null=True)
    claimed_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    delivered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "webhook_delivery"
        indexes = (
            Index(fields=("status", "next_attempt_at"), name="whd_status_next"),
            Index(fields=("endpoint_id", "created_at", "id"), name="whd_endpoint_created"),
        )
