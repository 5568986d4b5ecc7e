"""Call Logs at 1,000,000 calls, on SQLite and PostgreSQL.

Measures the server time of two HTMX rows-fragment requests through the real app
(routing, session, query, rendering): the list filtered by assistant + status + date
range, and a search for a transcript word. Reference measured in the same run: the same
queries on a copy of the database without the indexes (SQLite: without the call indexes,
and LIKE instead of FTS5; PostgreSQL: the same SQL with the indexes dropped).
Target: p95 <= 50 ms for each request, on each database.

Seeding is bulk (executemany / COPY) and cached: the SQLite file under bench/out/, the
PostgreSQL database by name; a rerun skips it. Usage: bench_calllogs_query.py [sqlite|postgres]
"""

from __future__ import annotations

import asyncio
import importlib
import os
import random
import shutil
import sqlite3
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import progress, signed_in_client, verdict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out"
N_CALLS = 1_000_000
N_OURS = 700_000  # the org under test; the rest belong to three other orgs
N_ASSISTANTS = 8
PASSWORD = "bench-password-0123"
EMAIL = "bench-admin@example.com"
PG_ADMIN = os.environ.get("TALKTURO_BENCH_PG", "postgres://postgres@127.0.0.1:5432/postgres")
PG_DB = "talkturo_bench_calllogs"
SEED_VERSION = "v2"
END = datetime(2025, 6, 1, tzinfo=UTC)
RUNS = 40
REF_RUNS = 6
RARE_WORD = "chargeback"  # in about 1 call in 300
# From rare to nearly everywhere, so both full-text plans are exercised.
SEARCHES = [RARE_WORD, "survey", "allergy", "warranty", "reschedule", "refund"]

WORDS = [
    "order",
    "delivery",
    "refund",
    "invoice",
    "payment",
    "account",
    "password",
    "appointment",
    "booking",
    "cancel",
    "reschedule",
    "tuesday",
    "thursday",
    "weekend",
    "morning",
    "afternoon",
    "address",
    "postcode",
    "courier",
    "tracking",
    "parcel",
    "damaged",
    "replacement",
    "warranty",
    "subscription",
    "upgrade",
    "plan",
    "price",
    "discount",
    "coupon",
    "receipt",
    "bank",
    "card",
    "transfer",
    "balance",
    "statement",
    "doctor",
    "dentist",
    "table",
    "reservation",
    "menu",
    "allergy",
    "delivery",
    "driver",
    "late",
    "early",
    "window",
    "confirm",
    "email",
    "phone",
    "number",
    "reference",
    "manager",
    "complaint",
    "feedback",
    "survey",
    "thanks",
    "hello",
    "goodbye",
    "please",
    "help",
    "question",
    "answer",
    "problem",
]


def _rng_transcript(rng: random.Random) -> str:
    # Zipf-like: the first words of the list come up far more often than the last.
    n = rng.randint(20, 60)
    words = [WORDS[min(int(rng.paretovariate(1.2)) - 1, len(WORDS) - 1)] for _ in range(n)]
    if rng.random() < 1 / 300:
        words.insert(rng.randrange(len(words)), RARE_WORD)
    return " ".join(words)


def _rows(org_ids: list[str], assistants: dict[str, list[str]]) -> Any:
    """The calls, as tuples in the column order of ``COLUMNS`` (string times, for SQLite)."""
    rng = random.Random(7)
    statuses = ["completed"] * 74 + ["no-answer"] * 11 + ["busy"] * 7 + ["failed"] * 8
    for i in range(N_CALLS):
        org = org_ids[0] if i < N_OURS else org_ids[1 + i % 3]
        started = END - timedelta(seconds=rng.randint(0, 365 * 86400))
        status = rng.choice(statuses)
        answered = status in {"completed", "failed"}
        dur = rng.randint(30_000, 600_000) if answered else rng.randint(0, 30_000)
        theirs = f"+1 {rng.randint(200, 999)}-555-{rng.randint(0, 9999):04d}"
        inbound = rng.random() < 0.7
        src, dst = (theirs, "+1 415-555-0100") if inbound else ("+1 415-555-0100", theirs)
        has_rec = answered and rng.random() < 0.9
        yield (
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            org,
            rng.choice(assistants[org]),
            "inbound" if inbound else "outbound",
            src,
            dst,
            "".join(c for c in src if c.isdigit()),
            "".join(c for c in dst if c.isdigit()),
            status,
            started,
            started + timedelta(milliseconds=dur),
            dur,
            True,
            has_rec,
            _rng_transcript(rng) if answered else "",
            started,
        )


COLUMNS = [
    "id",
    "org_id",
    "assistant_id",
    "direction",
    "from_number",
    "to_number",
    "from_digits",
    "to_digits",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "recording_enabled",
    "has_recording",
    "transcript_text",
    "created_at",
]


async def _make_accounts(db_url: str) -> tuple[list[str], dict[str, list[str]]]:
    """Migrate, then create the orgs, assistants and the admin user through the services."""
    from web.db import close_db, migrate, open_db
    from web.models import Assistant, Plan, Role
    from web.services.accounts import create_org, create_user
    from web.settings import DatabaseSettings

    settings = DatabaseSettings(db_url)
    await migrate(settings)
    await open_db(settings)
    try:
        orgs = [await create_org(f"Bench org {i}", Plan.PRO) for i in range(4)]
        await create_user(orgs[0], EMAIL, PASSWORD, Role.ADMIN)
        assistants: dict[str, list[str]] = {}
        for org in orgs:
            count = N_ASSISTANTS if org is orgs[0] else 2
            made = [await Assistant.create(org=org, name=f"Assistant {k}") for k in range(count)]
            assistants[str(org.id)] = [str(a.id) for a in made]
        return [str(o.id) for o in orgs], assistants
    finally:
        await close_db()


def seed_sqlite(path: Path) -> None:
    """1M calls into a migrated SQLite file with executemany (FTS5 filled by its triggers)."""
    path.unlink(missing_ok=True)
    org_ids, assistants = asyncio.run(_make_accounts(f"sqlite://{path}"))
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    sql = f'INSERT INTO "call" ({", ".join(COLUMNS)}) VALUES ({", ".join("?" * len(COLUMNS))})'
    batch: list[tuple[Any, ...]] = []
    t0 = time.perf_counter()
    for i, row in enumerate(_rows(org_ids, assistants), 1):
        r = list(row)
        for k in (9, 10, 15):
            r[k] = r[k].isoformat(" ")
        batch.append(tuple(r))
        if len(batch) == 50_000:
            db.executemany(sql, batch)
            db.commit()
            batch.clear()
            progress(f"  sqlite: {i:,} calls ({time.perf_counter() - t0:.0f} s)")
    if batch:
        db.executemany(sql, batch)
    db.execute("INSERT INTO call_fts(call_fts) VALUES ('optimize')")
    db.execute("ANALYZE")
    db.execute("CREATE TABLE bench_seed (version TEXT)")
    db.execute("INSERT INTO bench_seed VALUES (?)", (SEED_VERSION,))
    db.commit()
    db.close()


async def seed_postgres(url: str) -> None:
    """1M calls with COPY; the full-text index is rebuilt once at the end, not row by row."""
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{PG_DB}"')
    await admin.close()
    org_ids, assistants = await _make_accounts(url)
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    await conn.execute("DROP INDEX IF EXISTS call_transcript_tsv")
    t0 = time.perf_counter()
    batch: list[tuple[Any, ...]] = []
    for i, row in enumerate(_rows(org_ids, assistants), 1):
        r = list(row)
        for k in (0, 1, 2):
            r[k] = uuid.UUID(r[k])
        batch.append(tuple(r))
        if len(batch) == 100_000:
            await conn.copy_records_to_table("call", records=batch, columns=COLUMNS)
            batch.clear()
            progress(f"  postgres: {i:,} calls ({time.perf_counter() - t0:.0f} s)")
    if batch:
        await conn.copy_records_to_table("call", records=batch, columns=COLUMNS)
    progress("  postgres: building the full-text index")
    mig = importlib.import_module("web.migrations.0004_call_search_tsv")
    await conn.execute(mig.POSTGRES_UP)
    await conn.execute("ANALYZE")
    await conn.execute("CREATE TABLE bench_seed (version TEXT)")
    await conn.execute("INSERT INTO bench_seed VALUES ($1)", SEED_VERSION)
    await conn.close()


def sqlite_seeded(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        db = sqlite3.connect(path)
        row = db.execute("SELECT version FROM bench_seed").fetchone()
        db.close()
        return bool(row and row[0] == SEED_VERSION)
    except sqlite3.Error:
        return False


async def postgres_seeded(url: str) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    except Exception:  # the database does not exist yet
        return False
    try:
        row = await conn.fetchrow("SELECT version FROM bench_seed")
        return bool(row and row["version"] == SEED_VERSION)
    except Exception:  # no marker table: a half-seeded database
        return False
    finally:
        await conn.close()


def _p95(samples: list[float]) -> float:
    return (
        statistics.quantiles(samples, n=20, method="inclusive")[18]
        if len(samples) > 1
        else samples[0]
    )


async def _scenarios(db_url: str) -> tuple[list[str], str]:
    from web.db import close_db, open_db
    from web.models import Assistant, User
    from web.settings import DatabaseSettings

    await open_db(DatabaseSettings(db_url))
    try:
        user = await User.get(email=EMAIL)
        assistants = [str(a.id) for a in await Assistant.filter(org_id=user.org_id)]  # type: ignore[attr-defined]
        return assistants, str(user.org_id)  # type: ignore[attr-defined]
    finally:
        await close_db()


def _filter_params(rng: random.Random, assistants: list[str]) -> dict[str, str]:
    start = END - timedelta(days=rng.randint(30, 330))
    return {
        "assistant": rng.choice(assistants),
        "status": rng.choice(["completed", "completed", "no-answer", "failed"]),
        "date_from": start.date().isoformat(),
        "date_to": (start + timedelta(days=rng.choice([7, 30, 90]))).date().isoformat(),
    }


async def measure_app(db_url: str, tmp: Path) -> dict[str, list[float]]:
    """Server time of the two rows-fragment requests through the real app, in process."""
    assistants, _ = await _scenarios(db_url)
    rng = random.Random(11)
    times: dict[str, list[float]] = {"filter": [], "search": []}
    async with signed_in_client(db_url, tmp, EMAIL, PASSWORD) as client:
        hx = {"HX-Request": "true"}
        searches = SEARCHES
        for i in range(RUNS + 3):
            for name, params in (
                ("filter", _filter_params(rng, assistants)),
                ("search", {"q": searches[i % len(searches)]}),
            ):
                t0 = time.perf_counter()
                r = await client.get("/calls", params=params, headers=hx)
                elapsed = (time.perf_counter() - t0) * 1000
                assert r.status_code == 200, r.text[:300]
                assert 'class="call-row' in r.text, f"{name} found no calls: {params}"
                if i >= 3:  # the first requests warm caches
                    times[name].append(elapsed)
    return times


async def measure_sql(
    dialect: str, db_url: str, org_id: str, assistants: list[str]
) -> dict[str, list[float]]:
    """The queries as SQL alone (a handful of runs: without indexes they are slow)."""
    from web.services.call_query import build_sql, parse_filters

    rng = random.Random(11)
    out: dict[str, list[float]] = {"filter": [], "search": []}
    org = uuid.UUID(org_id)
    for i in range(REF_RUNS):
        for name in ("filter", "search"):
            if name == "filter":
                sql, values = build_sql(
                    dialect, org, parse_filters(_filter_params(rng, assistants)).filters, 51
                )
            elif dialect == "sqlite":
                # Without the FTS5 table, a word search is a scan with LIKE.
                sql = (
                    'SELECT "call"."id" FROM "call" WHERE "call"."org_id" = ? AND '
                    '"call"."transcript_text" LIKE ? ORDER BY "call"."started_at" DESC, '
                    '"call"."id" DESC LIMIT 51'
                )
                values = [org_id, f"%{SEARCHES[i % len(SEARCHES)]}%"]
            else:
                sql, values = build_sql(
                    dialect,
                    org,
                    parse_filters({"q": SEARCHES[i % len(SEARCHES)]}).filters,
                    51,
                )
            out[name].append(await _run_sql(dialect, db_url, sql, values))
    return out


async def _run_sql(dialect: str, db_url: str, sql: str, values: list[Any]) -> float:
    if dialect == "sqlite":
        db = sqlite3.connect(db_url.removeprefix("sqlite://"))
        t0 = time.perf_counter()
        db.execute(sql, values).fetchall()
        elapsed = (time.perf_counter() - t0) * 1000
        db.close()
        return elapsed
    import asyncpg

    conn = await asyncpg.connect(db_url.replace("postgres://", "postgresql://", 1))
    try:
        t0 = time.perf_counter()
        await conn.fetch(sql, *[uuid.UUID(v) if _is_uuid(v) else v for v in values])
        return (time.perf_counter() - t0) * 1000
    finally:
        await conn.close()


def _is_uuid(v: Any) -> bool:
    if isinstance(v, uuid.UUID):
        return False
    try:
        uuid.UUID(str(v))
        return isinstance(v, str)
    except ValueError:
        return False


def run_sqlite(tmp: Path) -> bool:
    path = OUT / "calllogs_1m.sqlite3"
    if sqlite_seeded(path):
        progress(f"sqlite: reusing {path}")
    else:
        progress(f"sqlite: seeding {N_CALLS:,} calls into {path}")
        seed_sqlite(path)
    url = f"sqlite://{path}"
    times = asyncio.run(measure_app(url, tmp))
    assistants, org_id = asyncio.run(_scenarios(url))
    progress("sqlite: copying the database without its indexes")
    bare = tmp / "bare.sqlite3"
    src = sqlite3.connect(path)
    dst = sqlite3.connect(bare)
    src.backup(dst)
    src.close()
    for name in ("call_org_started", "call_org_assistant", "call_org_status", "call_org_has_rec"):
        dst.execute(f"DROP INDEX IF EXISTS {name}")
    for trig in ("call_fts_ai", "call_fts_ad", "call_fts_au"):
        dst.execute(f"DROP TRIGGER IF EXISTS {trig}")
    dst.execute("DROP TABLE IF EXISTS call_fts")
    dst.commit()
    dst.close()
    bare_times = asyncio.run(measure_sql("sqlite", f"sqlite://{bare}", org_id, assistants))
    bare.unlink()
    return report("sqlite", times, bare_times)


def run_postgres(tmp: Path) -> bool:
    import asyncpg

    base = PG_ADMIN.rsplit("/", 1)[0]
    url = f"{base}/{PG_DB}"
    if asyncio.run(postgres_seeded(url)):
        progress(f"postgres: reusing database {PG_DB}")
    else:
        progress(f"postgres: seeding {N_CALLS:,} calls into database {PG_DB}")
        asyncio.run(seed_postgres(url))
    times = asyncio.run(measure_app(url, tmp))
    assistants, org_id = asyncio.run(_scenarios(url))
    progress("postgres: copying the database without its indexes")
    bare_name = f"{PG_DB}_bare"

    async def copy() -> None:
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{bare_name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{bare_name}" TEMPLATE "{PG_DB}"')
        await admin.close()
        conn = await asyncpg.connect(
            f"{base}/{bare_name}".replace("postgres://", "postgresql://", 1)
        )
        for name in (
            "call_org_started",
            "call_org_assistant",
            "call_org_status",
            "call_org_has_rec",
            "call_transcript_tsv",
        ):
            await conn.execute(f"DROP INDEX IF EXISTS {name}")
        await conn.execute("ANALYZE call")
        await conn.close()

    async def drop() -> None:
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{bare_name}" WITH (FORCE)')
        await admin.close()

    asyncio.run(copy())
    try:
        bare_times = asyncio.run(measure_sql("postgres", f"{base}/{bare_name}", org_id, assistants))
    finally:
        asyncio.run(drop())
    return report("postgres", times, bare_times)


def report(db: str, app: dict[str, list[float]], bare: dict[str, list[float]]) -> bool:
    ok = True
    labels = {"filter": "assistant+status+date range", "search": "transcript word search"}
    for name in ("filter", "search"):
        p50, p95 = statistics.median(app[name]), _p95(app[name])
        ref = statistics.median(bare[name])
        print(
            f"{db:8} {labels[name]:28} rows fragment p50 {p50:6.1f} ms  p95 {p95:6.1f} ms | "
            f"same query without indexes (SQL alone) median {ref:8.1f} ms "
            f"= {ref / p50:.0f}x the indexed request"
        )
        ok &= verdict(f"{db} {labels[name]} p95 ms", p95, 50, at_most=True)
    return ok


def main() -> int:
    import tempfile

    OUT.mkdir(parents=True, exist_ok=True)
    which = sys.argv[1:] or ["sqlite", "postgres"]
    tmp = Path(tempfile.mkdtemp(prefix="bench-calllogs-"))
    ok = True
    try:
        if "sqlite" in which:
            ok &= run_sqlite(tmp)
        if "postgres" in which:
            ok &= run_postgres(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
