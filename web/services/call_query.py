"""The one query behind Call Logs and ``GET /api/v1/calls``: filters, search, keyset pages.

Parsing turns query-string values into :class:`CallFilters` (or readable messages);
:func:`query_calls` turns filters into one SQL statement per page, newest first
(``started_at`` desc, ``id`` desc), continued by an opaque cursor. Every condition
is written so that an index can serve it: the org's composite indexes for the
equality filters and the time order, the full-text index for transcript words.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urlencode

from tortoise import connections

from web.errors import InvalidInput
from web.models import Analysis, Assistant, Call, CallStatus, Direction, Message, Recording
from web.services import search
from web.services.calls import EARLIEST, LATEST, TIME_RANGE
from web.tenancy import calls_by_ids, get_assistant, get_call, recording_of

# In the order of the filter form, so links built here match the URLs the form pushes.
FILTER_NAMES = (
    "q",
    "assistant",
    "status",
    "direction",
    "phone",
    "from_number",
    "to_number",
    "campaign",
    "recording",
    "date_from",
    "date_to",
    "min_duration",
)
PAGE_SIZE = 50
# "About N calls" counts at most this many rows (an index walk), never the whole table.
COUNT_CAP = 10_000
MAX_PAGE_SIZE = 200
_PHONE_CHARS = re.compile(r"^[+0-9 ()\-.]+$")
# A search that looks like a number (at least this many digits) searches phone numbers.
_MIN_PHONE_DIGITS = 3
_MAX_TEXT = 200


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ends: the last call's start time and id."""

    started_at: datetime
    call_id: uuid.UUID

    def encode(self) -> str:
        """Opaque, URL-safe text."""
        raw = json.dumps([self.started_at.isoformat(), str(self.call_id)]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor in ``text``, or InvalidInput."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            when, call_id = json.loads(raw)
            started = datetime.fromisoformat(when)
            if started.tzinfo is None:
                raise ValueError("naive")
            return cls(started.astimezone(UTC), uuid.UUID(call_id))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise InvalidInput(
                "cursor: this page link is not valid; start again from the newest calls."
            ) from None


@dataclass(frozen=True, slots=True)
class CallFilters:
    """What the Call Logs list is narrowed to. Empty filters list every call, newest first."""

    assistant: uuid.UUID | None = None
    status: CallStatus | None = None
    direction: Direction | None = None
    phone: str = ""
    # Digits anywhere in the caller's (from) or the called (to) number only.
    from_digits: str = ""
    to_digits: str = ""
    campaign: str | None = None
    q: str = ""
    recording: bool | None = None
    started_from: datetime | None = None
    # Exclusive upper bound.
    started_before: datetime | None = None
    min_duration_s: int | None = None
    cursor: Cursor | None = None
    # The values as given, so a form and links can be rebuilt from them.
    raw: Mapping[str, str] = field(default_factory=dict)

    def query_string(self, **overrides: str | None) -> str:
        """The filters as a URL query (without cursor unless given); empty values left out."""
        values: dict[str, str | None] = {k: self.raw.get(k, "") for k in FILTER_NAMES}
        values.update(overrides)
        return urlencode([(k, v) for k, v in values.items() if v])

    @property
    def active(self) -> bool:
        """Whether any filter (not counting the cursor) narrows the list."""
        return any(self.raw.get(k) for k in FILTER_NAMES)


@dataclass(frozen=True, slots=True)
class ParsedFilters:
    """Filters and the problems found in the values they came from."""

    filters: CallFilters
    errors: dict[str, str]

    def or_raise(self) -> CallFilters:
        """The filters, or InvalidInput naming every bad value."""
        if self.errors:
            raise InvalidInput(" ".join(f"{k}: {v}" for k, v in self.errors.items()))
        return self.filters


_ASCII_INT = re.compile(r"[0-9]{1,12}")


class _OutOfRange(ValueError):
    """A well-formed time outside the range calls may have."""


def _parse_time(value: str, *, end: bool, tz: tzinfo = UTC) -> datetime:
    """A day (``YYYY-MM-DD``, in ``tz``) or an ISO 8601 time with zone; ``end`` makes a day
    inclusive."""
    if len(value) == 10:
        day = date.fromisoformat(value)
        # Midnight on the wall clock of the zone, whatever its offset that day.
        start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
        if not EARLIEST <= start < LATEST:
            raise _OutOfRange(value)
        if end:
            day += timedelta(days=1)
            return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
        return start
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("naive")
    if not 1970 <= parsed.year <= 2999:
        raise _OutOfRange(value)
    moment = parsed.astimezone(UTC)
    # A moment as upper bound is inclusive: include calls that started exactly then.
    return moment + timedelta(microseconds=1) if end else moment


def parse_filters(params: Mapping[str, str], tz: tzinfo = UTC) -> ParsedFilters:
    """Filters from query-string values (days in ``tz``); every bad value gets a message,
    none raises."""
    raw = {k: (params.get(k) or "").strip() for k in (*FILTER_NAMES, "cursor")}
    errors: dict[str, str] = {}
    kw: dict[str, Any] = {}

    if raw["assistant"]:
        try:
            kw["assistant"] = uuid.UUID(raw["assistant"])
        except ValueError:
            errors["assistant"] = "choose one of your assistants."
    if raw["status"]:
        try:
            kw["status"] = CallStatus(raw["status"])
        except ValueError:
            errors["status"] = "must be one of " + ", ".join(s.value for s in CallStatus) + "."
    if raw["direction"]:
        try:
            kw["direction"] = Direction(raw["direction"])
        except ValueError:
            errors["direction"] = "must be inbound or outbound."
    if raw["phone"]:
        digits = re.sub(r"\D", "", raw["phone"])
        if not _PHONE_CHARS.match(raw["phone"]) or not digits:
            errors["phone"] = "use digits (spaces, +, dashes and brackets are ignored)."
        else:
            kw["phone"] = digits
    for name, attr in (("from_number", "from_digits"), ("to_number", "to_digits")):
        if raw[name]:
            only = re.sub(r"\D", "", raw[name])
            if not _PHONE_CHARS.match(raw[name]) or not only:
                errors[name] = "use digits (spaces, +, dashes and brackets are ignored)."
            else:
                kw[attr] = only
    if raw["campaign"]:
        if len(raw["campaign"]) > 100 or "\x00" in raw["campaign"]:
            errors["campaign"] = "at most 100 characters."
        else:
            kw["campaign"] = raw["campaign"]
    if raw["q"]:
        if len(raw["q"]) > _MAX_TEXT:
            errors["q"] = f"search at most {_MAX_TEXT} characters."
        else:
            kw["q"] = raw["q"]
    if raw["recording"]:
        if raw["recording"] not in {"yes", "no"}:
            errors["recording"] = "must be yes or no."
        else:
            kw["recording"] = raw["recording"] == "yes"
    for name, end in (("date_from", False), ("date_to", True)):
        if raw[name]:
            try:
                kw["started_before" if end else "started_from"] = _parse_time(
                    raw[name], end=end, tz=tz
                )
            except _OutOfRange:
                errors[name] = f"use a date {TIME_RANGE}."
            except ValueError:
                errors[name] = "use a date such as 2025-01-31 (or an ISO 8601 time with zone)."
    start, stop = kw.get("started_from"), kw.get("started_before")
    if start and stop and start >= stop:
        errors["date_to"] = "must not be before the start date."
    if raw["min_duration"]:
        try:
            if not _ASCII_INT.fullmatch(raw["min_duration"]):
                raise ValueError(raw["min_duration"])
            seconds = int(raw["min_duration"])
            if seconds < 0 or seconds > 86_400 * 7:
                raise ValueError(seconds)
            kw["min_duration_s"] = seconds
        except ValueError:
            errors["min_duration"] = "use a whole number of seconds, 0 or more."
    if raw["cursor"]:
        try:
            kw["cursor"] = Cursor.decode(raw["cursor"])
        except InvalidInput as exc:
            errors["cursor"] = exc.detail.removeprefix("cursor: ")
    # Bad values are kept in ``raw`` so the form shows what was typed next to its message.
    return ParsedFilters(CallFilters(raw=raw, **kw), errors)


def parse_limit(raw: str | None) -> int:
    """A page size from the query string: 1 to 200, 50 when absent."""
    if not raw:
        return PAGE_SIZE
    # ASCII digits only: int() also reads other scripts' digits, which no client means.
    value = int(raw) if _ASCII_INT.fullmatch(raw) else 0
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}.")
    return value


@dataclass(frozen=True, slots=True)
class CallPage:
    """One page of calls and the cursor of the next one (None on the last page)."""

    calls: list[Call]
    next_cursor: str | None


class _Params:
    """Collects parameters and hands out the dialect's placeholders."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        if self.dialect == "sqlite" and isinstance(value, uuid.UUID):
            value = str(value)
        self.values.append(value)
        return "?" if self.dialect == "sqlite" else f"${len(self.values)}"


def _search_kind(q: str) -> str:
    """How a free-text search is read: a call id, a phone number, or transcript words."""
    try:
        uuid.UUID(q)
        return "id"
    except ValueError:
        pass
    if _PHONE_CHARS.match(q) and len(re.sub(r"\D", "", q)) >= _MIN_PHONE_DIGITS:
        return "phone"
    return "text"


def build_sql(
    dialect: str, org_id: uuid.UUID, f: CallFilters, limit: int, *, probe: bool = False
) -> tuple[str, list[Any]]:
    """The SELECT of one page of call ids for ``f``, and its parameters.

    ``probe`` picks the full-text plan for common words (see :func:`search.text_match`).
    """
    p = _Params(dialect)
    text_set = False
    where = [f'"call"."org_id" = {p(org_id)}']
    # (column, operator, value): a filter left empty (None) adds nothing.
    columns: list[tuple[str, str, Any]] = [
        ("assistant_id", "=", f.assistant),
        ("status", "=", f.status.value if f.status else None),
        ("direction", "=", f.direction.value if f.direction else None),
        ("has_recording", "=", f.recording),
        ("started_at", ">=", f.started_from),
        ("started_at", "<", f.started_before),
        ("duration_ms", ">=", None if f.min_duration_s is None else f.min_duration_s * 1000),
        ("from_digits", "LIKE", f"%{f.from_digits}%" if f.from_digits else None),
        ("to_digits", "LIKE", f"%{f.to_digits}%" if f.to_digits else None),
        ("campaign", "=", f.campaign),
    ]
    for column, op, value in columns:
        if value is not None:
            where.append(f'"call"."{column}" {op} {p(value)}')
    if f.phone:
        where.append(_phone_condition(p, f.phone))
    if f.q:
        kind = _search_kind(f.q)
        if kind == "id":
            where.append(f'"call"."id" = {p(uuid.UUID(f.q))}')
        elif kind == "phone":
            where.append(_phone_condition(p, re.sub(r"\D", "", f.q)))
        else:
            fts = search.fts_query(dialect, f.q)
            # A search of punctuation alone has no word to find: it matches nothing.
            where.append(search.text_match(dialect, p(fts), probe=probe) if fts else "1 = 0")
            text_set = bool(fts) and not probe
    if f.cursor:
        # Row-value comparison: one range on the (org, started_at, id) order.
        where.append(
            f'("call"."started_at", "call"."id") < ({p(f.cursor.started_at)}, '
            f"{p(f.cursor.call_id)})"
        )
    # Only fixed SQL and placeholders are joined here; every value travels as a parameter.
    conditions = " AND ".join(where)
    order = f'ORDER BY "call"."started_at" DESC, "call"."id" DESC LIMIT {int(limit)}'
    sql = f'SELECT "call"."id" FROM "call" WHERE {conditions} {order}'  # noqa: S608
    if dialect == "postgres" and text_set:
        # The set plan: matches found through the GIN index first, then sorted. Without the
        # fence the planner walks the time index and checks rows until it finds enough.
        inner = f'SELECT "call"."id", "call"."started_at" FROM "call" WHERE {conditions}'  # noqa: S608
        order = f"ORDER BY m.started_at DESC, m.id DESC LIMIT {int(limit)}"
        sql = f"WITH m AS MATERIALIZED ({inner}) SELECT m.id FROM m {order}"  # noqa: S608
    return sql, p.values


def _phone_condition(p: _Params, digits: str) -> str:
    # Digits only, so no LIKE wildcard can come from the user.
    pattern = f"%{digits}%"
    return f'("call"."from_digits" LIKE {p(pattern)} OR "call"."to_digits" LIKE {p(pattern)})'


async def query_calls(org_id: uuid.UUID, f: CallFilters, limit: int = PAGE_SIZE) -> CallPage:
    """One page of the org's calls that match ``f``, newest first, and the next page's cursor."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    conn = connections.get("default")
    dialect = str(conn.capabilities.dialect)
    probe = False
    if f.q and _search_kind(f.q) == "text":
        fts = search.fts_query(dialect, f.q)
        probe = bool(fts) and await search.many_matches(org_id, fts or "")
    sql, values = build_sql(dialect, org_id, f, limit + 1, probe=probe)
    rows = await conn.execute_query_dict(sql, values)
    ids = [r["id"] for r in rows[:limit]]
    calls = await calls_by_ids(org_id, ids)
    next_cursor = None
    if len(rows) > limit and calls:
        last = calls[-1]
        next_cursor = Cursor(last.started_at.astimezone(UTC), last.id).encode()
    return CallPage(calls, next_cursor)


async def count_calls(org_id: uuid.UUID, f: CallFilters, cap: int = COUNT_CAP) -> int | None:
    """How many calls match ``f`` (at most ``cap``), or None when counting is not cheap:
    transcript searches are left uncounted."""
    if f.q and _search_kind(f.q) == "text":
        return None
    conn = connections.get("default")
    dialect = str(conn.capabilities.dialect)
    sql, values = build_sql(dialect, org_id, without_cursor(f), cap)
    rows = await conn.execute_query_dict(f"SELECT count(*) AS n FROM ({sql}) AS page", values)  # noqa: S608
    return int(rows[0]["n"])


def without_cursor(f: CallFilters) -> CallFilters:
    """The same filters from the first page."""
    return replace(f, cursor=None, raw={**f.raw, "cursor": ""})


@dataclass(frozen=True, slots=True)
class CallDetail:
    """Everything the Call Detail panel shows about one call."""

    call: Call
    assistant: Assistant
    recording: Recording | None
    messages: list[Message]
    analysis: Analysis | None


async def load_detail(org_id: uuid.UUID, call_id: str | uuid.UUID) -> CallDetail:
    """The org's call with its recording, transcript turns and analysis; NotFound otherwise."""
    call = await get_call(org_id, call_id)
    assistant = await get_assistant(org_id, call.assistant_id)  # type: ignore[attr-defined]
    return CallDetail(
        call=call,
        assistant=assistant,
        recording=await recording_of(call),
        messages=await Message.filter(call_id=call.id).order_by("seq"),
        analysis=await Analysis.get_or_none(call_id=call.id),
    )
