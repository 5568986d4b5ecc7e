"""The Call Logs query: each filter, their combinations, full-text search, keyset pages."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.conftest import make_tenant
from tests.dashboard._data import T0, Seed, make_call, seed
from web.models import CallStatus, Org, Recording
from web.services.call_query import CallFilters, Cursor, parse_filters, query_calls


@pytest.fixture
async def data(db: None, db_backend: str) -> tuple[Org, Seed]:
    """Org A's known calls, and org B with a call that matches almost every filter."""
    a = await make_tenant("Org A")
    b = await make_tenant("Org B")
    return a.org, await seed(a.org, b.org)


async def names(org: Org, s: Seed, **params: str) -> list[str]:
    """The names of the calls that ``params`` select, newest first."""
    f = parse_filters(params).or_raise()
    page = await query_calls(org.id, f, limit=200)
    by_id = {c.id: n for n, c in s.calls.items()}
    assert s.foreign.id not in {c.id for c in page.calls}, "another org's call leaked"
    return [by_id[c.id] for c in page.calls]


async def test_no_filter_lists_everything_newest_first(data: tuple[Org, Seed]) -> None:
    org, s = data
    assert await names(org, s) == ["live", "refund", "booking", "busy", "noanswer", "old"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "completed"}, ["refund", "booking", "old"]),
        ({"status": "in-progress"}, ["live"]),
        ({"direction": "outbound"}, ["booking"]),
        ({"recording": "yes"}, ["live", "refund", "booking"]),
        ({"recording": "no"}, ["busy", "noanswer", "old"]),
        ({"min_duration": "100"}, ["refund", "booking"]),
        ({"min_duration": "0"}, ["refund", "booking", "busy", "noanswer", "old"]),
        ({"phone": "7946"}, ["booking"]),
        ({"phone": "+44 (20) 7946-0958"}, ["booking"]),
        ({"phone": "212-555"}, ["busy"]),
        ({"phone": "4155550101"}, ["live", "refund", "noanswer", "old"]),
        ({"date_from": "2025-03-10"}, ["live", "refund", "booking", "busy"]),
        ({"date_to": "2025-03-09"}, ["noanswer", "old"]),
        ({"date_from": "2025-03-09", "date_to": "2025-03-09"}, ["noanswer"]),
        ({"date_from": "2025-03-10T11:40:00Z"}, ["live", "refund", "booking"]),
        ({"date_to": "2025-03-10T11:40:00+00:00"}, ["booking", "busy", "noanswer", "old"]),
    ],
)
async def test_single_filters(
    data: tuple[Org, Seed], params: dict[str, str], expected: list[str]
) -> None:
    org, s = data
    assert await names(org, s, **params) == expected


async def test_assistant_filter(data: tuple[Org, Seed]) -> None:
    org, s = data
    assert await names(org, s, assistant=str(s.support.id)) == ["refund", "noanswer"]
    assert await names(org, s, assistant=str(s.sales.id)) == ["live", "booking", "busy", "old"]
    # A well-formed id of nothing (or of another org's assistant) just matches nothing.
    assert await names(org, s, assistant=str(uuid.uuid4())) == []


async def test_combinations(data: tuple[Org, Seed]) -> None:
    org, s = data
    sales = str(s.sales.id)
    assert await names(org, s, assistant=sales, status="completed") == ["booking", "old"]
    assert await names(
        org, s, assistant=sales, status="completed", date_from="2025-03-01", date_to="2025-03-31"
    ) == ["booking"]
    assert await names(org, s, recording="yes", min_duration="200") == ["booking"]
    assert await names(org, s, q="refund", recording="yes") == ["refund"]
    assert await names(org, s, q="refund", date_to="2025-03-01") == ["old"]
    assert await names(org, s, direction="inbound", phone="0101", status="no-answer") == [
        "noanswer"
    ]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("refund", ["refund", "old"]),  # "Refunds" in the old call: stemmed
        ("REFUNDS", ["refund", "old"]),
        ("refu", []),  # whole words only
        ("refund order", ["refund"]),  # every word must be there
        ("order refund", ["refund"]),
        ("appointment tuesday", ["booking"]),
        ("tuesday", ["booking"]),
        ("weather", []),
        ('"refund*" (', ["refund", "old"]),  # query syntax is never interpreted
        ("!!!", []),
    ],
)
async def test_full_text_search(data: tuple[Org, Seed], q: str, expected: list[str]) -> None:
    org, s = data
    assert await names(org, s, q=q) == expected


@pytest.mark.parametrize("probe_from", [1, 10**9])
async def test_both_full_text_plans_agree(
    data: tuple[Org, Seed], monkeypatch: pytest.MonkeyPatch, probe_from: int
) -> None:
    # Common words walk the newest calls, rare ones build the match set: same answers.
    from web.services import search

    monkeypatch.setattr(search, "PROBE_FROM", probe_from)
    monkeypatch.setattr(search, "PG_PROBE_FROM", probe_from)
    org, s = data
    assert await names(org, s, q="refund") == ["refund", "old"]
    assert await names(org, s, q="refund", status="completed", date_to="2025-03-01") == ["old"]
    assert await names(org, s, q="order refund") == ["refund"]


async def test_search_by_call_id_and_phone(data: tuple[Org, Seed]) -> None:
    org, s = data
    assert await names(org, s, q=str(s.calls["busy"].id)) == ["busy"]
    assert await names(org, s, q=str(s.foreign.id)) == []
    assert await names(org, s, q="+44 20 7946") == ["booking"]
    assert await names(org, s, q="212 555") == ["busy"]


async def test_search_sees_transcripts_written_later(data: tuple[Org, Seed]) -> None:
    org, s = data
    call = s.calls["busy"]
    call.transcript_text = "Callback about the invoice"
    await call.save(update_fields=["transcript_text"])
    assert await names(org, s, q="invoice") == ["busy"]
    call.transcript_text = "Nothing left of it"
    await call.save(update_fields=["transcript_text"])
    assert await names(org, s, q="invoice") == []
    await s.calls["refund"].delete()
    assert await names(org, s, q="refund") == ["old"]


async def test_cursor_pages_cover_everything_once(db: None, db_backend: str) -> None:
    t = await make_tenant("Org P")
    from web.models import Assistant

    asst = await Assistant.create(org=t.org, name="Pager")
    made = []
    for i in range(23):
        # Many share a start time: the id breaks ties, so no call is lost or repeated.
        made.append(await make_call(t.org, asst, started_at=T0 - timedelta(minutes=i // 4)))
    expected = sorted(made, key=lambda c: (c.started_at, str(c.id)), reverse=True)
    seen = []
    f: CallFilters = parse_filters({}).or_raise()
    pages = 0
    while True:
        page = await query_calls(t.org.id, f, limit=5)
        seen.extend(page.calls)
        pages += 1
        if page.next_cursor is None:
            break
        f = parse_filters({"cursor": page.next_cursor}).or_raise()
    assert pages == 5
    assert [c.id for c in seen] == [c.id for c in expected]


async def test_cursor_keeps_filters(data: tuple[Org, Seed]) -> None:
    org, s = data
    first = await query_calls(org.id, parse_filters({"status": "completed"}).or_raise(), limit=2)
    assert [c.id for c in first.calls] == [s.calls["refund"].id, s.calls["booking"].id]
    assert first.next_cursor
    rest = await query_calls(
        org.id, parse_filters({"status": "completed", "cursor": first.next_cursor}).or_raise(), 2
    )
    assert [c.id for c in rest.calls] == [s.calls["old"].id]
    assert rest.next_cursor is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"direction": "sideways"}, "direction"),
        ({"assistant": "nope"}, "assistant"),
        ({"phone": "call me"}, "phone"),
        ({"phone": "+-"}, "phone"),
        ({"recording": "maybe"}, "recording"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_to": "2025-02-30"}, "date_to"),
        ({"date_from": "2025-03-10T10:00:00"}, "date_from"),  # no zone
        ({"date_from": "2025-03-10", "date_to": "2025-03-01"}, "date_to"),
        ({"min_duration": "-1"}, "min_duration"),
        ({"min_duration": "1.5"}, "min_duration"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_invalid_values_give_messages(params: dict[str, str], field: str) -> None:
    parsed = parse_filters(params)
    assert field in parsed.errors
    assert parsed.errors[field].endswith(".")
    assert parsed.filters.raw[field] == params[field].strip()


def test_cursor_round_trip() -> None:
    c = Cursor(T0, uuid.uuid4())
    assert Cursor.decode(c.encode()) == c


async def test_recording_rows_untouched(data: tuple[Org, Seed]) -> None:
    # Reading never writes: the list query leaves recordings as they were.
    org, s = data
    before = await Recording.all().count()
    await names(org, s, q="refund", status=CallStatus.COMPLETED.value)
    assert await Recording.all().count() == before
