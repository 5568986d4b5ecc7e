"""Demo data: real two-voice recordings, stored and playable like any other."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np

from web.models import Assistant, Call, CallStatus, Message, Org, Recording, RecordingStatus, User
from web.services.demo import seed_demo
from web.settings import Settings


def _decode(path: Path) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "2", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype="<i2").reshape(-1, 2).astype(np.float64)


async def test_demo_seeds_users_assistants_calls_and_two_voice_audio(
    settings: Settings, db: None
) -> None:
    out = io.StringIO()
    org = await seed_demo(settings, progress=out, calls=12)
    text = out.getvalue()
    assert "admin@demo.talkturo.test / " in text
    assert "Seeding demo calls: 12/12 (100%)" in text
    assert await User.filter(org=org).count() == 2
    assistants = await Assistant.filter(org=org)
    assert len(assistants) == 3
    assert sorted(a.recording_enabled for a in assistants) == [False, True, True]
    calls = await Call.filter(org=org)
    assert len(calls) == 12
    recs = await Recording.filter(org_id=org.id, status=RecordingStatus.AVAILABLE)
    assert recs, "answered calls on recording assistants have recordings"
    for rec in recs:
        call = await Call.get(id=rec.call_id)
        assert call.recording_enabled
        assert call.status in (CallStatus.COMPLETED, CallStatus.FAILED)
        assert call.has_recording
    rec = recs[0]
    path = settings.storage.local_path / rec.storage_key
    assert path.stat().st_size == rec.size_bytes
    pcm = _decode(path)
    call = await Call.get(id=rec.call_id)
    messages = await Message.filter(call=call).order_by("seq")
    # Each message is heard on its own side only: caller left, assistant right.
    rate = 22050
    for m in messages:
        seg = pcm[m.start_ms * rate // 1000 : m.end_ms * rate // 1000]
        left, right = np.sqrt((seg**2).mean(axis=0))
        if m.role == "user":
            assert left > 20 * right, (m.text, left, right)
        else:
            assert right > 20 * left, (m.text, left, right)
    assert await Org.exists(id=org.id)
