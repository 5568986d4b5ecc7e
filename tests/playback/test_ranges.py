"""RFC 9110 Range evaluation, pure: every case the player and download clients rely on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from web.ranges import MAX_RANGES, evaluate, if_range_matches, parse_ranges

SIZE = 1000
ETAG = '"abc123"'
MODIFIED = datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "status", "start", "end"),
    [
        (None, 200, 0, 999),
        ("bytes=0-", 206, 0, 999),
        ("bytes=0-0", 206, 0, 0),
        ("bytes=10-19", 206, 10, 19),
        ("bytes=990-", 206, 990, 999),
        ("bytes=990-5000", 206, 990, 999),
        ("bytes=-1", 206, 999, 999),
        ("bytes=-100", 206, 900, 999),
        ("bytes=-5000", 206, 0, 999),
        ("Bytes=1-2", 206, 1, 2),
        ("bytes= 1-2 ", 206, 1, 2),
        ("bytes=1-2,", 206, 1, 2),
        ("bytes=999-999", 206, 999, 999),
        ("bytes=0-99999999999999999999999", 206, 0, 999),
        # unsatisfiable
        ("bytes=1000-", 416, 0, 0),
        ("bytes=1000-2000", 416, 0, 0),
        ("bytes=-0", 416, 0, 0),
        ("bytes=99999999999999999999999-", 416, 0, 0),
        ("bytes=1000-1001, 2000-", 416, 0, 0),
        # several ranges: the whole body
        ("bytes=0-1,5-6", 200, 0, 999),
        ("bytes=0-1, 2000-3000", 200, 0, 999),
        # malformed: ignored
        ("bytes=5-3", 200, 0, 999),
        ("bytes=abc", 200, 0, 999),
        ("bytes=-", 200, 0, 999),
        ("bytes=1--2", 200, 0, 999),
        ("bytes=+1-2", 200, 0, 999),
        ("bytes=1 - 2", 200, 0, 999),
        ("bytes=", 200, 0, 999),
        ("bytes", 200, 0, 999),
        ("items=0-1", 200, 0, 999),
        ("bytes=0x1-2", 200, 0, 999),
        ("bytes=\u0661-\u0662", 200, 0, 999),
    ],
)
def test_decision_table(header: str | None, status: int, start: int, end: int) -> None:
    d = evaluate(header, SIZE)
    assert (d.status, d.start, d.end) == (status, start, end)
    if status == 206:
        assert d.content_range == f"bytes {start}-{end}/{SIZE}"
        assert d.length == end - start + 1
    elif status == 416:
        assert d.content_range == f"bytes */{SIZE}"
        assert d.length == 0
    else:
        assert d.content_range is None
        assert d.length == SIZE


def test_too_many_ranges_ignored_with_bounded_work() -> None:
    header = "bytes=" + ",".join(f"{i}-{i}" for i in range(1000))
    assert parse_ranges(header) is None
    assert evaluate(header, SIZE).status == 200
    exactly = "bytes=" + ",".join(f"{i}-{i}" for i in range(MAX_RANGES - 1))
    assert parse_ranges(exactly) is not None
    huge = "bytes=" + ",".join(["5000-"] * 1_000_000)
    assert evaluate(huge, SIZE).status == 200


@pytest.mark.parametrize(
    ("if_range", "expected_status"),
    [
        (ETAG, 206),
        ('"other"', 200),
        ('W/"abc123"', 200),
        ("Tue, 04 Mar 2025 05:06:07 GMT", 206),
        ("Tue, 04 Mar 2025 05:06:08 GMT", 200),
        ("not a date", 200),
    ],
)
def test_if_range(if_range: str, expected_status: int) -> None:
    d = evaluate("bytes=5-9", SIZE, if_range=if_range, etag=ETAG, last_modified=MODIFIED)
    assert d.status == expected_status


def test_if_range_without_range_is_whole() -> None:
    assert evaluate(None, SIZE, if_range=ETAG, etag=ETAG).status == 200
    assert not if_range_matches("Tue, 04 Mar 2025 05:06:07 GMT", ETAG, None)


def test_empty_representation_is_unsatisfiable() -> None:
    assert evaluate("bytes=0-", 0).status == 416
    assert evaluate(None, 0).length == 0
