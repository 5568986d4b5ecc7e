"""Full-text search over call transcripts, on SQLite (FTS5) and PostgreSQL (tsvector).

The database keeps the index itself, so a transcript is searchable the moment
``Call.transcript_text`` is saved, whoever saves it:

- SQLite: ``call_fts``, an FTS5 table with external content (the ``call`` table),
  kept in step by triggers on ``call`` (insert, delete, update of ``transcript_text``).
  After a ``VACUUM`` (which may renumber rowids) run :func:`rebuild_index`.
- PostgreSQL: a GIN index on the expression ``to_tsvector('english', transcript_text)``;
  queries use exactly that expression, so the planner picks the index.

Both stem English words (FTS5 ``porter`` tokenizer, PostgreSQL ``english`` config):
"refunds" finds "refund". Whole words only: a prefix query has to merge the postings
of every word it starts, which made common prefixes cost seconds at a million calls.
"""

from __future__ import annotations

import re

from tortoise import connections

from web.models import Call

FTS_TABLE = "call_fts"
PG_TS_CONFIG = "english"
# The indexed expression on PostgreSQL; a query must repeat it verbatim to use the index.
PG_TSVECTOR = f'to_tsvector(\'{PG_TS_CONFIG}\', "call"."transcript_text")'
_WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 12
# From this many matching transcripts on, walking the newest calls beats building the set.
PROBE_FROM = 15_000


def terms(q: str) -> list[str]:
    """The words of a search query (letters and digits only), lower-cased, at most 12."""
    return [w.lower() for w in _WORD.findall(q)][:MAX_TERMS]


def fts_query(dialect: str, q: str) -> str | None:
    """The dialect's query text for "every word of ``q``", or None if ``q`` has no word.

    Words are quoted (SQLite) or reduced to letters and digits (PostgreSQL), so no
    query syntax of either engine can come from the user.
    """
    words = terms(q)
    if not words:
        return None
    if dialect == "sqlite":
        return " AND ".join(f'"{w}"' for w in words)
    return " & ".join(words)


def text_match(dialect: str, placeholder: str, *, probe: bool = False) -> str:
    """The condition on ``call`` that its transcript matches the query bound at ``placeholder``.

    On SQLite there are two plans with the same result: the set of matching rows
    (cheap when few transcripts match) or, with ``probe``, one look-up per candidate
    row walked newest first (cheap when many match, as the page fills at once).
    """
    if dialect == "sqlite":
        # Only fixed SQL and the placeholder are interpolated; the words travel as a parameter.
        if probe:
            cond = (
                "EXISTS (SELECT 1 FROM call_fts WHERE call_fts MATCH {p}"
                ' AND call_fts.rowid = "call".rowid)'
            )
        else:
            cond = '"call".rowid IN (SELECT rowid FROM call_fts WHERE call_fts MATCH {p})'
        return cond.replace("{p}", placeholder)
    return f"{PG_TSVECTOR} @@ to_tsquery('{PG_TS_CONFIG}', {placeholder})"


async def many_matches(fts: str) -> bool:
    """Whether at least ``PROBE_FROM`` transcripts match (SQLite): counting stops there."""
    conn = connections.get("default")
    rows = await conn.execute_query_dict(
        "SELECT count(*) AS n FROM (SELECT 1 FROM call_fts WHERE call_fts MATCH ? LIMIT ?)",
        [fts, PROBE_FROM],
    )
    return int(rows[0]["n"]) >= PROBE_FROM


def dialect() -> str:
    """The SQL dialect of the default connection: ``sqlite`` or ``postgres``."""
    return str(connections.get("default").capabilities.dialect)


async def index_transcript(call: Call) -> None:
    """Make ``call``'s saved ``transcript_text`` searchable.

    Call it after saving ``transcript_text``. Today the database does the work
    (triggers on SQLite, an expression index on PostgreSQL), so this returns at
    once; it stays the one place to hook indexing into if that ever changes.
    """
    del call


async def rebuild_index() -> None:
    """Rebuild the SQLite full-text index from the ``call`` table (after a VACUUM)."""
    if dialect() == "sqlite":
        conn = connections.get("default")
        await conn.execute_script(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES('rebuild')")
