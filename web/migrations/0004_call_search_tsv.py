"""PostgreSQL: a stored tsvector column for transcripts, so checking a row is cheap.

Replaces the expression index of 0002: with the column, walking the newest calls and
testing each one costs microseconds instead of a ``to_tsvector`` per row. SQLite keeps
its FTS5 table (nothing to do).
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

POSTGRES_UP = """
ALTER TABLE "call" ADD COLUMN IF NOT EXISTS transcript_tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('english', "transcript_text")) STORED;
CREATE INDEX IF NOT EXISTS call_transcript_tsv ON "call" USING GIN (transcript_tsv);
DROP INDEX IF EXISTS call_transcript_fts;
"""

POSTGRES_DOWN = """
CREATE INDEX IF NOT EXISTS call_transcript_fts ON "call"
    USING GIN (to_tsvector('english', "transcript_text"));
DROP INDEX IF EXISTS call_transcript_tsv;
ALTER TABLE "call" DROP COLUMN IF EXISTS transcript_tsv;
"""


async def forward(apps: Any, schema_editor: Any) -> None:
    """Add the column and its GIN index on PostgreSQL."""
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(POSTGRES_UP)


async def backward(apps: Any, schema_editor: Any) -> None:
    """Back to the expression index."""
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(POSTGRES_DOWN)


class Migration(migrations.Migration):
    dependencies = [("models", "0003_rate_counter")]

    initial = False

    operations = [ops.RunPython(forward, backward)]
