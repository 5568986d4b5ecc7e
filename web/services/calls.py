"""Calls: start, end, transcript, analysis, and their API shape."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from tortoise.transactions import in_transaction

from web.errors import Conflict, InvalidInput
from web.models import (
    Analysis,
    Assistant,
    Call,
    CallStatus,
    Direction,
    Message,
    MessageRole,
    Recording,
    RecordingStatus,
)
from web.recordings.playback import api_path
from web.security import signed_query
from web.services import search
from web.tenancy import get_assistant, get_call

_NUMBER = re.compile(r"^[+0-9 ()\-.]{1,40}$")
FINAL_STATUSES = frozenset(s for s in CallStatus if s is not CallStatus.IN_PROGRESS)


def digits(number: str) -> str:
    """Only the digits of a phone number."""
    return "".join(ch for ch in number if ch.isdigit())


def _number(value: str, field: str) -> str:
    value = value.strip()
    if not _NUMBER.match(value) or not digits(value):
        raise InvalidInput(f"{field} must be a phone number such as +14155550123.")
    return value


# Times a call may have: far enough either way for any real call, and far from the ends of
# the calendar, where adding a retention period or a day would overflow.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
TIME_RANGE = "between 1970-01-01 and 2999-12-31"
# No call is this long: larger transcript times are a mistake, and would not fit the column.
MAX_TRANSCRIPT_MS = 24 * 3600 * 1000

MAX_CAMPAIGN = 100


def _campaign(value: str | None) -> str | None:
    """A campaign name, trimmed; empty means none."""
    if value is None:
        return None
    value = value.strip()
    if "\x00" in value:
        raise InvalidInput("campaign must not contain NUL characters.")
    if len(value) > MAX_CAMPAIGN:
        raise InvalidInput(f"campaign must be at most {MAX_CAMPAIGN} characters.")
    return value or None


def _as_utc(value: datetime | None, field: str) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if value.tzinfo is None:
        raise InvalidInput(f"{field} must include a time zone (ISO 8601, e.g. ...Z).")
    try:
        moment = value.astimezone(UTC)
    except OverflowError:
        moment = EARLIEST - timedelta(days=1) if value.year < 2000 else LATEST
    if not EARLIEST <= moment < LATEST:
        raise InvalidInput(f"{field} must be {TIME_RANGE}.")
    return moment


async def start_call(
    org_id: uuid.UUID,
    assistant_id: str,
    direction: str,
    from_number: str,
    to_number: str,
    started_at: datetime | None = None,
    campaign: str | None = None,
) -> Call:
    """A new in-progress call; it snapshots the assistant's recording switch now."""
    assistant = await get_assistant(org_id, assistant_id)
    try:
        dir_ = Direction(direction)
    except ValueError:
        raise InvalidInput("direction must be inbound or outbound.") from None
    src, dst = _number(from_number, "from_number"), _number(to_number, "to_number")
    return await new_call(
        org_id,
        assistant,
        dir_,
        src,
        dst,
        _as_utc(started_at, "started_at"),
        campaign=_campaign(campaign),
    )


async def new_call(
    org_id: uuid.UUID,
    assistant: Assistant,
    direction: Direction,
    from_number: str,
    to_number: str,
    started_at: datetime,
    *,
    status: CallStatus = CallStatus.IN_PROGRESS,
    recording_enabled: bool | None = None,
    **fields: Any,
) -> Call:
    """Write a call row: the one place its searchable digits are derived from its numbers.

    ``recording_enabled`` (and ``redact_dtmf``) default to the assistant's switches now;
    ``fields`` are further columns (``ended_at``, ``duration_ms``, ``has_recording``,
    ``transcript_text``...).
    """
    return await Call.create(
        org_id=org_id,
        assistant=assistant,
        direction=direction,
        from_number=from_number,
        to_number=to_number,
        from_digits=digits(from_number),
        to_digits=digits(to_number),
        status=status,
        started_at=started_at,
        recording_enabled=(
            assistant.recording_enabled if recording_enabled is None else recording_enabled
        ),
        redact_dtmf=fields.pop("redact_dtmf", assistant.redact_dtmf),
        **fields,
    )


async def end_call(
    org_id: uuid.UUID, call_id: str, status: str, ended_at: datetime | None = None
) -> Call:
    """Set a call's final status. Ending it again with the same status changes nothing."""
    call = await get_call(org_id, call_id)
    try:
        final = CallStatus(status)
    except ValueError:
        final = None
    if final is None or final not in FINAL_STATUSES:
        names = ", ".join(sorted(s.value for s in FINAL_STATUSES))
        raise InvalidInput(f"status must be one of {names}.")
    end = _as_utc(ended_at, "ended_at")
    if end < call.started_at:
        raise InvalidInput("ended_at is before the call started.")
    if call.status != CallStatus.IN_PROGRESS:
        if call.status == final:
            return call
        raise Conflict(f"The call already ended as {call.status}.")
    call.status = final
    call.ended_at = end
    call.duration_ms = int((end - call.started_at).total_seconds() * 1000)
    await call.save(update_fields=["status", "ended_at", "duration_ms"])
    return call


def recording_url(secret_key: str, call_id: uuid.UUID) -> str:
    """The signed, time-limited API download link of a call's recording."""
    path = api_path(call_id)
    return f"{path}?{signed_query(secret_key, path)}"


def recording_to_dict(rec: Recording, secret_key: str) -> dict[str, Any]:
    """The API shape of a recording."""
    available = rec.status == RecordingStatus.AVAILABLE
    return {
        "status": str(rec.status),
        "duration_ms": rec.duration_ms if available else None,
        "size_bytes": rec.size_bytes if available else None,
        "sha256": rec.sha256 if available else None,
        "url": recording_url(secret_key, rec.call_id) if available else None,  # type: ignore[attr-defined]
        "created_at": rec.created_at.isoformat(),
        "purge_at": rec.purge_at.isoformat() if rec.purge_at else None,
        "redactions": list(rec.redactions or []),
        "pauses": list(rec.pauses or []),
    }


def call_to_dict(call: Call, rec: Recording | None, secret_key: str) -> dict[str, Any]:
    """The API shape of a call; ``rec`` is its recording row, if any."""
    return {
        "id": str(call.id),
        "assistant_id": str(call.assistant_id),  # type: ignore[attr-defined]
        "direction": str(call.direction),
        "from_number": call.from_number,
        "to_number": call.to_number,
        "status": str(call.status),
        "started_at": call.started_at.isoformat(),
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "duration_ms": call.duration_ms,
        "recording_enabled": call.recording_enabled,
        "campaign": call.campaign,
        "recording": recording_to_dict(rec, secret_key) if rec else None,
    }


class TranscriptMessage(msgspec.Struct, forbid_unknown_fields=True):
    """One turn of a transcript as the API takes it."""

    role: str
    text: str
    start_ms: int
    end_ms: int


async def put_transcript(
    org_id: uuid.UUID, call_id: str, messages: list[TranscriptMessage]
) -> Call:
    """Replace the call's transcript (and its searchable text) in one transaction."""
    call = await get_call(org_id, call_id)
    turns: list[tuple[MessageRole, str, int, int]] = []
    for seq, m in enumerate(messages):
        try:
            role = MessageRole(m.role)
        except ValueError:
            raise InvalidInput(f"messages[{seq}].role must be user, assistant or system.") from None
        if m.start_ms < 0 or m.end_ms < m.start_ms or m.end_ms > MAX_TRANSCRIPT_MS:
            raise InvalidInput(f"messages[{seq}]: need 0 <= start_ms <= end_ms <= 86400000 (24 h).")
        if len(m.text) > 100_000:
            raise InvalidInput(f"messages[{seq}].text is too long.")
        turns.append((role, m.text, m.start_ms, m.end_ms))
    await save_transcript(call, turns)
    return call


async def save_transcript(call: Call, turns: list[tuple[MessageRole, str, int, int]]) -> None:
    """Replace the call's messages, ``(role, text, start_ms, end_ms)`` in order, and its
    searchable text, in one transaction."""
    rows = [
        Message(call_id=call.id, seq=seq, role=role, text=text, start_ms=start, end_ms=end)
        for seq, (role, text, start, end) in enumerate(turns)
    ]
    async with in_transaction():
        await Message.filter(call_id=call.id).delete()
        if rows:
            await Message.bulk_create(rows)
        call.transcript_text = "\n".join(text for _, text, _, _ in turns)
        await call.save(update_fields=["transcript_text"])
    await search.index_transcript(call)


async def put_analysis(
    org_id: uuid.UUID, call_id: str, summary: str, success: bool | None, data: dict[str, Any]
) -> Analysis:
    """Replace the call's analysis."""
    call = await get_call(org_id, call_id)
    if len(summary) > 100_000:
        raise InvalidInput("summary is too long.")
    return await save_analysis(call, summary, success, data)


async def save_analysis(
    call: Call, summary: str, success: bool | None, data: dict[str, Any]
) -> Analysis:
    """Replace the call's analysis with this one."""
    async with in_transaction():
        await Analysis.filter(call_id=call.id).delete()
        return await Analysis.create(call_id=call.id, summary=summary, success=success, data=data)
