"""Call review: notes pinned to moments, the reviewer's preferences, and search-hit marking."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from markupsafe import Markup, escape

from web.auth import Principal
from web.errors import InvalidInput, NotFound, PermissionDenied
from web.models import Call, Note, User
from web.services import search
from web.tenancy import get_call, parse_id

MAX_NOTE = 2000
# A day: longer than any call, and far inside a BIGINT.
MAX_AT_MS = 86_400_000
SPEEDS = ("0.5", "0.75", "1", "1.25", "1.5", "2")
_SNIPPET_SIDE = 60
# Crude English endings, so a search for "refunds" also marks "refund" and "refunded".
_ENDINGS = re.compile(r"(?:ing|ed|es|s)$")


@dataclass(frozen=True, slots=True)
class NoteView:
    """A note as shown and as the API returns it."""

    id: uuid.UUID
    at_ms: int
    text: str
    author: str
    created_at: datetime
    user_id: uuid.UUID | None

    def to_dict(self) -> dict[str, object]:
        """The API shape."""
        return {
            "id": str(self.id),
            "at_ms": self.at_ms,
            "text": self.text,
            "author": self.author,
            "created_at": self.created_at.isoformat(),
        }


def _view(n: Note) -> NoteView:
    return NoteView(n.id, n.at_ms, n.text, n.author, n.created_at, n.user_id)  # type: ignore[attr-defined]


async def list_notes(org_id: uuid.UUID, call_id: str | uuid.UUID) -> list[NoteView]:
    """The call's notes in the order of the recording; NotFound for another org's call."""
    return await notes_of(await get_call(org_id, call_id))


async def notes_of(call: Call) -> list[NoteView]:
    """The notes of ``call`` (already looked up in its org) in the order of the recording."""
    return [_view(n) for n in await Note.filter(call_id=call.id).order_by("at_ms", "created_at")]


def _check_note(at_ms: object, text: object, duration_ms: int | None) -> tuple[int, str]:
    if isinstance(at_ms, bool) or not isinstance(at_ms, int) or not 0 <= at_ms <= MAX_AT_MS:
        raise InvalidInput("at_ms must be a whole number of milliseconds from 0 to 86400000.")
    if duration_ms is not None and at_ms > duration_ms:
        raise InvalidInput("at_ms is after the end of the call.")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text must not be empty.")
    if "\x00" in text:
        raise InvalidInput("text must not contain NUL characters.")
    if len(text) > MAX_NOTE:
        raise InvalidInput(f"text must be at most {MAX_NOTE} characters.")
    return at_ms, text.strip()


async def add_note(
    principal: Principal, call_id: str | uuid.UUID, at_ms: object, text: object
) -> NoteView:
    """Pin a note to a moment of the org's call (any role may add one)."""
    call = await get_call(principal.org_id, call_id)
    at, body = _check_note(at_ms, text, call.duration_ms)
    note = await Note.create(
        org_id=principal.org_id,
        call_id=call.id,
        user_id=principal.user_id,
        api_key_id=principal.api_key_id,
        author=principal.label,
        at_ms=at,
        text=body,
    )
    return _view(note)


async def delete_note(principal: Principal, call_id: str | uuid.UUID, note_id: str) -> None:
    """Delete a note: its author or an admin; another org's or unknown note is NotFound."""
    call = await get_call(principal.org_id, call_id)
    note = await Note.get_or_none(id=parse_id(note_id, "note"), call_id=call.id)
    if note is None:
        raise NotFound("No such note.")
    own = (principal.user_id is not None and note.user_id == principal.user_id) or (  # type: ignore[attr-defined]
        principal.api_key_id is not None and note.api_key_id == principal.api_key_id  # type: ignore[attr-defined]
    )
    if not (own or principal.is_admin):
        raise PermissionDenied("Only the note's author or an admin can delete it.")
    await note.delete()


def parse_clock(raw: str) -> int:
    """Milliseconds from "m:ss", "h:mm:ss" or plain seconds; InvalidInput otherwise."""
    parts = raw.strip().split(":")
    try:
        if not 1 <= len(parts) <= 3 or any(not p.strip().isdigit() for p in parts):
            raise ValueError(raw)
        seconds = 0
        for p in parts:
            seconds = seconds * 60 + int(p)
    except ValueError:
        raise InvalidInput("Give the moment as m:ss, for example 1:05.") from None
    return seconds * 1000


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name this system knows, sorted."""
    return tuple(sorted(available_timezones()))


def zone(name: str | None) -> tzinfo | None:
    """The zone called ``name``, or None when it is empty or unknown."""
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def viewer_zone(user_zone: str | None, browser_zone: str | None) -> tuple[tzinfo, str]:
    """The zone times are shown in and its label: the user's choice, the browser's, or UTC."""
    for name in (user_zone, browser_zone):
        tz = zone(name)
        if tz is not None:
            return tz, str(name)
    return UTC, "UTC"


async def user_preferences(user_id: uuid.UUID | None) -> tuple[str | None, str]:
    """The user's chosen zone (None: the browser's) and playback speed."""
    if user_id is None:
        return None, "1"
    user = await User.get_or_none(id=user_id)
    if user is None:
        return None, "1"
    return user.time_zone, user.playback_speed or "1"


async def set_preferences(
    user_id: uuid.UUID, *, speed: str | None = None, time_zone: str | None = None
) -> None:
    """Remember the user's playback speed and/or time zone ("" for the browser's)."""
    changes: dict[str, str | None] = {}
    if speed is not None:
        if speed not in SPEEDS:
            raise InvalidInput("speed must be one of " + ", ".join(SPEEDS) + ".")
        changes["playback_speed"] = speed
    if time_zone is not None:
        if time_zone and zone(time_zone) is None:
            raise InvalidInput("Choose a time zone from the list.")
        changes["time_zone"] = time_zone or None
    if changes:
        await User.filter(id=user_id).update(**changes)


def highlight_terms(q: str) -> list[str]:
    """The word stems a text search looks for (empty for id and phone searches)."""
    if not q or _looks_like_number_or_id(q):
        return []
    return [_ENDINGS.sub("", w) or w for w in search.terms(q)]


def _looks_like_number_or_id(q: str) -> bool:
    try:
        uuid.UUID(q)
        return True
    except ValueError:
        return bool(re.fullmatch(r"[+0-9 ()\-.]+", q)) and len(re.sub(r"\D", "", q)) >= 3


def _pattern(terms: list[str]) -> re.Pattern[str] | None:
    if not terms:
        return None
    alts = "|".join(re.escape(t) for t in sorted(set(terms), key=len, reverse=True))
    return re.compile(rf"\b(?:{alts})\w*", re.IGNORECASE)


def highlight(text: str, terms: list[str] | None) -> Markup:
    """``text`` escaped, with every word that starts with a term wrapped in <mark>."""
    pattern = _pattern(terms or [])
    if pattern is None:
        return escape(text)
    out: list[Markup] = []
    last = 0
    mark = Markup("<mark>{}</mark>")
    for m in pattern.finditer(text):
        out.append(escape(text[last : m.start()]))
        out.append(mark.format(m.group(0)))
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def snippets(calls: list[Call], q: str) -> dict[uuid.UUID, Markup]:
    """For a text search: a short excerpt of each call's transcript around its first hit."""
    terms = highlight_terms(q)
    pattern = _pattern(terms)
    if pattern is None:
        return {}
    found: dict[uuid.UUID, Markup] = {}
    for c in calls:
        text = " ".join(c.transcript_text.split())
        m = pattern.search(text)
        if m is None:
            continue
        start = max(0, m.start() - _SNIPPET_SIDE)
        end = min(len(text), m.end() + _SNIPPET_SIDE)
        lead = "…" if start else ""
        tail = "…" if end < len(text) else ""
        found[c.id] = escape(lead) + highlight(text[start:end], terms) + escape(tail)
    return found
