"""Full-text search on call transcripts: FTS5 + triggers on SQLite, a GIN index on PostgreSQL."""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

SQLITE_UP = """
CREATE VIRTUAL TABLE IF NOT EXISTS call_fts USING fts5(
    transcript_text, content='call', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS call_fts_ai AFTER INSERT ON "call" BEGIN
    INSERT INTO call_fts(rowid, transcript_text) VALUES (new.rowid, new.transcript_text);
END;
CREATE TRIGGER IF NOT EXISTS call_fts_ad AFTER DELETE ON "call" BEGIN
    INSERT INTO call_fts(call_fts, rowid, transcript_text)
        VALUES ('delete', old.rowid, old.transcript_text);
END;
CREATE TRIGGER IF NOT EXISTS call_fts_au AFTER UPDATE OF transcript_text ON "call" BEGIN
    INSERT INTO call_fts(call_fts, rowid, transcript_text)
        VALUES ('delete', old.rowid, old.transcript_text);
    INSERT INTO call_fts(rowid, transcript_text) VALUES (new.rowid, new.transcript_text);
END;
INSERT INTO call_fts(call_fts) VALUES ('rebuild');
"""

SQLITE_DOWN = """
DROP TRIGGER IF EXISTS call_fts_ai;
DROP TRIGGER IF EXISTS call_fts_ad;
DROP TRIGGER IF EXISTS call_fts_au;
DROP TABLE IF EXISTS call_fts;
"""

POSTGRES_UP = """
CREATE INDEX IF NOT EXISTS call_transcript_fts ON "call"
    USING GIN (to_tsvector('english', "transcript_text"));
"""

POSTGRES_DOWN = "DROP INDEX IF EXISTS call_transcript_fts;"


def _script(schema_editor: Any, sqlite: str, postgres: str) -> str:
    dialect = schema_editor.client.capabilities.dialect
    if dialect == "sqlite":
        return sqlite
    if dialect == "postgres":
        return postgres
    raise NotImplementedError(f"full-text search is not set up for {dialect}")


async def forward(apps: Any, schema_editor: Any) -> None:
    """Create the dialect's full-text index over call transcripts."""
    await schema_editor.client.execute_script(_script(schema_editor, SQLITE_UP, POSTGRES_UP))


async def backward(apps: Any, schema_editor: Any) -> None:
    """Drop it again."""
    await schema_editor.client.execute_script(_script(schema_editor, SQLITE_DOWN, POSTGRES_DOWN))


class Migration(migrations.Migration):
    dependencies = [("models", "0001_initial")]

    initial = False

    operations = [ops.RunPython(forward, backward)]
