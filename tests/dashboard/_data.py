"""Hand-built calls for the dashboard tests: every field set on purpose."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from web.models import (
    Analysis,
    Assistant,
    Call,
    CallStatus,
    Direction,
    Message,
    MessageRole,
    Org,
    Recording,
    RecordingStatus,
)
from web.services.calls import new_call

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


async def make_call(
    org: Org,
    assistant: Assistant,
    *,
    minutes_ago: float = 0,
    started_at: datetime | None = None,
    direction: Direction = Direction.INBOUND,
    from_number: str = "+1 415-555-0101",
    to_number: str = "+1 415-555-0100",
    status: CallStatus = CallStatus.COMPLETED,
    duration_s: float | None = 60,
    transcript: str = "",
    recording: RecordingStatus | None = None,
    recording_enabled: bool = True,
    **rec_fields: Any,
) -> Call:
    """A call (and its recording row, if ``recording`` is given) written straight to the DB."""
    started = started_at or T0 - timedelta(minutes=minutes_ago)
    call = await new_call(
        org.id,
        assistant,
        direction,
        from_number,
        to_number,
        started,
        status=status,
        ended_at=None if duration_s is None else started + timedelta(seconds=duration_s),
        duration_ms=None if duration_s is None else int(duration_s * 1000),
        recording_enabled=recording_enabled,
        has_recording=recording is not None,
        transcript_text=transcript,
    )
    if recording is not None:
        await Recording.create(call=call, org=org, status=recording, **rec_fields)
    return call


@dataclass
class Seed:
    """Org A's assistants and calls by name, and org B's look-alike call."""

    sales: Assistant
    support: Assistant
    calls: dict[str, Call]
    foreign: Call


async def seed(org: Org, other: Org) -> Seed:
    """A small, fully known data set: names say what each call is for."""
    sales = await Assistant.create(org=org, name="Sales line")
    support = await Assistant.create(org=org, name="Support desk", recording_enabled=False)
    c: dict[str, Call] = {}
    c["refund"] = await make_call(
        org,
        support,
        minutes_ago=10,
        transcript="Hello, I would like a refund for my order.\nSure, the refund is on its way.",
        recording=RecordingStatus.AVAILABLE,
        duration_s=125,
    )
    c["booking"] = await make_call(
        org,
        sales,
        minutes_ago=20,
        direction=Direction.OUTBOUND,
        from_number="+1 415-555-0100",
        to_number="+44 20 7946 0958",
        transcript="Booking an appointment for Tuesday morning.",
        recording=RecordingStatus.AVAILABLE,
        duration_s=300,
    )
    c["busy"] = await make_call(
        org,
        sales,
        minutes_ago=30,
        status=CallStatus.BUSY,
        duration_s=0,
        from_number="+1 212 555 7788",
    )
    c["noanswer"] = await make_call(
        org, support, minutes_ago=24 * 60 + 5, status=CallStatus.NO_ANSWER, duration_s=20
    )
    c["live"] = await make_call(
        org,
        sales,
        minutes_ago=1,
        status=CallStatus.IN_PROGRESS,
        duration_s=None,
        recording=RecordingStatus.RECORDING,
    )
    c["old"] = await make_call(
        org,
        sales,
        minutes_ago=40 * 24 * 60,
        transcript="Refunds are processed in five days.",
        duration_s=45,
    )
    other_asst = await Assistant.create(org=other, name="Sales line")
    foreign = await make_call(
        other,
        other_asst,
        minutes_ago=5,
        transcript="I would like a refund for my order.",
        recording=RecordingStatus.AVAILABLE,
    )
    return Seed(sales, support, c, foreign)


async def add_messages(call: Call, turns: list[tuple[str, str, int]]) -> None:
    """Transcript turns (role, text, start_ms) for ``call``."""
    await Message.bulk_create(
        [
            Message(call=call, seq=i, role=MessageRole(r), text=t, start_ms=ms, end_ms=ms + 900)
            for i, (r, t, ms) in enumerate(turns)
        ]
    )


async def add_analysis(
    call: Call, summary: str, success: bool | None, data: dict[str, Any]
) -> None:
    """The post-call analysis of ``call``."""
    await Analysis.create(call=call, summary=summary, success=success, data=data)
