"""Full-text search over call transcripts, on SQLite (FTS5) and PostgreSQL (tsvector).

The database keeps the index itself, so a transcript is searchable the moment
``Call.transcript_text`` is saved, whoever saves it:

- SQLite: ``call_fts``, an FTS5 table with external content (the ``call`` table),
  kept in step by triggers on ``call`` (insert, delete, update of ``transcript_text``).
  After a ``VACUUM`` (which may renumber rowids) run :func:`rebuild_index`.
- PostgreSQL: a GIN index on the expression ``to_tsvector('english', transcript_text)``;
  queries use exactly that expression, so the planner picks the index.

Both stem English words (FTS5 ``porter`` tokenizer, PostgreSQL ``english`` config):
"refunds" finds "refund". The last word of a query also matches as a prefix, so a
search box that searches as one types finds "refu" in "refund".
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tortoise import connections

from web.models import Call

FTS_TABLE = "call_fts"
PG_TS_CONFIG = "english"
# The indexed expression on PostgreSQL; a query must repeat it verbatim to use the index.
PG_TSVECTOR = f'to_tsvector(\'{PG_TS_CONFIG}\', "call"."transcript_text")'
_WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 12


def terms(q: str) -> list[str]:
    """The words of a search query (letters and digits only), lower-cased, at most 12."""
    return [w.lower() for w in _WORD.findall(q)][:MAX_TERMS]


def text_match(dialect: str, q: str, bind: Callable[[str], str]) -> str | None:
    """The condition "the transcript holds every word of ``q``", or None if ``q`` has no word.

    ``bind`` takes the query's parameter value and returns its placeholder (``?`` or ``$n``).
    """
    words = terms(q)
    if not words:
        return None
    if dialect == "sqlite":
        # Each word quoted, so FTS5 syntax characters cannot reach its parser.
        expr = " AND ".join(f'"{w}"' for w in words) + "*"
        sql = '"call".rowid IN (SELECT rowid FROM call_fts WHERE call_fts MATCH {p})'
        return sql.format(p=bind(expr))
    expr = " & ".join(words) + ":*"
    return f"{PG_TSVECTOR} @@ to_tsquery('{PG_TS_CONFIG}', {bind(expr)})"


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
