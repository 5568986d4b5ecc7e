"""Full-text search over call transcripts, on SQLite (FTS5) and PostgreSQL (tsvector).

The database keeps the index itself, so a transcript is searchable the moment
``Call.transcript_text`` is saved, whoever saves it:

- SQLite: ``call_fts``, an FTS5 table with external content (the ``call`` table),
  kept in step by triggers on ``call`` (insert, delete, update of ``transcript_text``).
  After a ``VACUUM`` (which may renumber rowids) run :func:`rebuild_index`.
- PostgreSQL: ``call.transcript_tsv``, a stored generated column
  ``to_tsvector('english', transcript_text)`` with a GIN index.

Both stem English words (FTS5 ``porter`` tokenizer, PostgreSQL ``english`` config):
"refunds" finds "refund". Whole words only: a prefix query has to merge the postings
of every word it starts, which made common prefixes cost seconds at a million calls.
"""

from __future__ import annotations

import json
import re
import uuid

from tortoise import connections

from web.models import Call

FTS_TABLE = "call_fts"
PG_TS_CONFIG = "english"
# A stored, GIN-indexed column on PostgreSQL (migration 0004).
PG_TSVECTOR = '"call"."transcript_tsv"'
_WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 12
# From this many matching transcripts on, walking the newest calls beats building the set.
PROBE_FROM = 15_000
# PostgreSQL's check of a stored tsvector is cheap, so walking wins sooner (estimated rows).
PG_PROBE_FROM = 5_000
_PG_ESTIMATE = (
    'EXPLAIN (FORMAT JSON) SELECT 1 FROM "call" WHERE "call"."org_id" = $1'
    ' AND "call"."transcript_tsv" @@ to_tsquery(\'english\', $2)'
)


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

    There are two plans with the same result: the set of matching rows (cheap when few
    transcripts match) or, with ``probe``, a check of each candidate row walked newest
    first (cheap when many match, as the page fills at once). On PostgreSQL the set plan
    is the caller's to force (see ``call_query.build_sql``); the condition is the same.
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


async def many_matches(org_id: uuid.UUID, fts: str) -> bool:
    """Whether the words are common enough that walking the newest calls is the cheaper plan.

    SQLite counts matching transcripts, stopping at ``PROBE_FROM``; PostgreSQL asks its
    planner's estimate (from the column's statistics) for the org's calls.
    """
    conn = connections.get("default")
    if dialect() == "sqlite":
        rows = await conn.execute_query_dict(
            "SELECT count(*) AS n FROM (SELECT 1 FROM call_fts WHERE call_fts MATCH ? LIMIT ?)",
            [fts, PROBE_FROM],
        )
        return int(rows[0]["n"]) >= PROBE_FROM
    rows = await conn.execute_query_dict(_PG_ESTIMATE, [org_id, fts])
    plan = rows[0]["QUERY PLAN"]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"]) >= PG_PROBE_FROM


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
