"""HTTP Range requests (RFC 9110 §14) for one representation of a known size. Pure.

:func:`evaluate` turns the ``Range`` and ``If-Range`` header values into one decision:
the whole body (200), one part (206) or nothing (416). Work is bounded: a header with
more than :data:`MAX_RANGES` ranges is ignored, and several ranges are answered with the
whole body (which RFC 9110 allows) instead of a multipart response.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# More ranges than this in one header is abuse, not a player: ignore the header (200).
MAX_RANGES = 100
# Positions longer than this many digits are treated as "beyond any size" (no huge ints).
_MAX_DIGITS = 19
_HUGE = 10**_MAX_DIGITS


@dataclass(frozen=True, slots=True)
class RangeDecision:
    """How to answer: ``status`` 200, 206 or 416; ``start``..``end`` inclusive for 200/206."""

    status: int
    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        """Bytes in the body (0 for 416)."""
        return 0 if self.status == 416 else self.end - self.start + 1

    @property
    def content_range(self) -> str | None:
        """The ``Content-Range`` header value, for 206 and 416 only."""
        if self.status == 206:
            return f"bytes {self.start}-{self.end}/{self.size}"
        if self.status == 416:
            return f"bytes */{self.size}"
        return None

    @property
    def from_start(self) -> bool:
        """Whether the body begins at byte 0 (a fresh listen rather than a seek)."""
        return self.status != 416 and self.start == 0


def whole(size: int) -> RangeDecision:
    """The decision to send the whole representation."""
    return RangeDecision(200, 0, size - 1, size)


def _position(text: str) -> int | None:
    """A non-negative decimal, or None when ``text`` is not one (no signs, no spaces)."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    return _HUGE if len(text) > _MAX_DIGITS else int(text)


def parse_ranges(header: str) -> list[tuple[int | None, int | None]] | None:
    """The ranges of a ``bytes=`` header as (first, last) pairs; None if malformed or too many.

    ``(first, None)`` is open-ended, ``(None, n)`` is a suffix of ``n`` bytes.
    """
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    # Bounded: never split more than MAX_RANGES + 1 pieces, whatever the header holds.
    parts = spec.split(",", MAX_RANGES + 1)
    if len(parts) > MAX_RANGES:
        return None
    ranges: list[tuple[int | None, int | None]] = []
    for raw in parts:
        item = raw.strip(" \t")
        if not item:
            continue  # empty list elements are allowed by the list syntax
        first_s, dash, last_s = item.partition("-")
        if not dash:
            return None
        first = _position(first_s) if first_s else None
        last = _position(last_s) if last_s else None
        if (first_s and first is None) or (last_s and last is None):
            return None
        if first is None and last is None:
            return None
        if first is not None and last is not None and last < first:
            return None
        ranges.append((first, last))
    return ranges or None


def _resolve(first: int | None, last: int | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte span of one range in a body of ``size``, or None if unsatisfiable."""
    if first is None:
        assert last is not None
        if last == 0 or size == 0:
            return None
        return max(size - last, 0), size - 1
    if first >= size:
        return None
    return first, size - 1 if last is None else min(last, size - 1)


def if_range_matches(if_range: str, etag: str, last_modified: datetime | None) -> bool:
    """Whether ``If-Range`` still names this representation (strong ETag, or its exact date)."""
    value = if_range.strip()
    if value.startswith(('"', "W/")):
        # Weak tags never match (RFC 9110 §13.1.5: strong comparison).
        return not value.startswith("W/") and value == etag
    if last_modified is None:
        return False
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return False
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    return date == last_modified.astimezone(UTC).replace(microsecond=0)


def evaluate(
    range_header: str | None,
    size: int,
    *,
    if_range: str | None = None,
    etag: str = "",
    last_modified: datetime | None = None,
) -> RangeDecision:
    """Decide the answer to a GET with these ``Range`` / ``If-Range`` values (RFC 9110 §14.2)."""
    if range_header is None:
        return whole(size)
    if if_range is not None and not if_range_matches(if_range, etag, last_modified):
        return whole(size)
    ranges = parse_ranges(range_header)
    if ranges is None:
        return whole(size)
    spans = [span for first, last in ranges if (span := _resolve(first, last, size)) is not None]
    if not spans:
        return RangeDecision(416, 0, 0, size)
    if len(ranges) > 1:
        # Several ranges: the whole body is a valid answer and spares a multipart encoder.
        return whole(size)
    start, end = spans[0]
    return RangeDecision(206, start, end, size)
