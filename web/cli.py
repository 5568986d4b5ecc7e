"""The ``talkturo`` command line."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from web.db import close_db, migrate, open_db
from web.errors import DomainError
from web.observability import configure_logging
from web.settings import Settings, SettingsError, load_settings
from web.startup import validate


class UsageError(Exception):
    """Bad arguments: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _err(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def _out(msg: str) -> None:
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="talkturo", description="Talkturo Recordings")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("serve", help="migrate, optionally seed demo data, and serve")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--demo", action="store_true", help="seed demo data if the database is empty")
    sub.add_parser("worker", help="run the worker loop: purge, upload retries, recovery")
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("demo", help="seed a demo org with users, assistants and calls")

    org = sub.add_parser("org", help="orgs").add_subparsers(
        dest="org_command", required=True, parser_class=_Parser
    )
    oc = org.add_parser("create", help="create an org; prints its id")
    oc.add_argument("name")
    oc.add_argument("--plan", required=True)

    user = sub.add_parser("user", help="users").add_subparsers(
        dest="user_command", required=True, parser_class=_Parser
    )
    uc = user.add_parser("create", help="create a dashboard user; prints its id")
    uc.add_argument("--org", required=True)
    uc.add_argument("--email", required=True)
    uc.add_argument("--password", required=True)
    uc.add_argument("--role", required=True, choices=["admin", "agent"])

    key = sub.add_parser("apikey", help="API keys").add_subparsers(
        dest="apikey_command", required=True, parser_class=_Parser
    )
    kc = key.add_parser("create", help="create an API key; prints it once")
    kc.add_argument("--org", required=True)
    kc.add_argument("--name", default="")
    kc.add_argument("--role", default="admin", choices=["admin", "agent", "ingest"])

    pg = sub.add_parser("purge", help="one retention pass; prints what it purged")
    pg.add_argument("--dry-run", action="store_true")

    ex = sub.add_parser(
        "export", help="export an org's recordings to a ZIP, or `export verify FILE.zip`"
    )
    ex.add_argument("--org")
    ex.add_argument("--out")
    ex.add_argument("--date-from", help="first day (YYYY-MM-DD, UTC) or an ISO 8601 time")
    ex.add_argument("--date-to", help="last day (inclusive) or an ISO 8601 time")
    ev = ex.add_subparsers(dest="export_command", parser_class=_Parser).add_parser(
        "verify", help="check an export's entries against its manifest, and the signature"
    )
    ev.add_argument("file")
    ev.add_argument("--public-key", required=True, help="PEM file, or the base64 key")
    return p


async def _with_db(settings: Settings, fn: Callable[[], Awaitable[Any]]) -> Any:
    await migrate(settings.database)
    await close_db()
    await open_db(settings.database)
    try:
        return await fn()
    finally:
        await close_db()


async def _org_create(args: argparse.Namespace) -> str:
    from web.services.accounts import create_org, parse_plan

    org = await create_org(args.name, parse_plan(args.plan))
    return str(org.id)


async def _user_create(args: argparse.Namespace) -> str:
    from web.services.accounts import create_user, get_org, parse_role

    org = await get_org(args.org)
    user = await create_user(org, args.email, args.password, parse_role(args.role))
    return str(user.id)


async def _apikey_create(args: argparse.Namespace) -> str:
    from web.services.accounts import create_api_key, get_org, parse_key_role

    org = await get_org(args.org)
    row, key = await create_api_key(org, args.name, parse_key_role(args.role))
    _err(f"API key {row.prefix}… created for org {org.id}; it is shown only now.")
    return key


async def _purge(settings: Settings, dry_run: bool) -> None:
    from web.recordings.jobs.purge import purge_pass

    await purge_pass(settings, dry_run=dry_run, out=sys.stdout, progress=sys.stderr)


async def _export(settings: Settings, args: argparse.Namespace) -> None:
    from web.recordings.export import export_to_file

    await export_to_file(
        settings, args.org, Path(args.out), args.date_from, args.date_to, progress=sys.stderr
    )


def _verify(args: argparse.Namespace) -> int:
    from web.recordings.export_verify import PublicKeyError, load_public_key, verify

    if args.org or args.out or args.date_from or args.date_to:
        raise UsageError("talkturo export verify: takes FILE.zip and --public-key only")
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"talkturo export verify: no such file {args.file!r}")
    try:
        key = load_public_key(args.public_key)
    except PublicKeyError as exc:
        raise UsageError(f"talkturo export verify: {exc}") from None
    report = verify(path, key)
    for finding in report.findings:
        _out(f"FAIL {finding}")
    if not report.ok:
        _err(f"{args.file}: {len(report.findings)} check(s) failed.")
        return 1
    _out(
        f"OK {args.file}: {report.recordings} recording(s) match the manifest,"
        " and the signature is valid."
    )
    return 0


# How ``serve`` speaks WebSocket (bench/bench_ingest_cpu.py serves its floor with the same).
WEBSOCKET_OPTIONS: dict[str, Any] = {
    # The sans-I/O protocol (uvicorn's default since 0.50, named so an older default cannot
    # come back): 0.6-1.4 ms of CPU per live call-second less than the legacy one.
    "ws": "websockets-sansio",
    "ws_max_size": 1 << 20,
    # Media frames are base64 audio: compression costs CPU and saves little.
    "ws_per_message_deflate": False,
}


def _serve(settings: Settings, demo: bool) -> None:
    import uvicorn

    from web.app import create_app
    from web.services.demo import seed_demo_if_empty
    from web.shutdown import DrainingServer

    async def prepare() -> None:
        await validate(settings, apply_migrations=True)
        if demo:
            await open_db(settings.database)
            try:
                await seed_demo_if_empty(settings, progress=sys.stderr)
            finally:
                await close_db()

    asyncio.run(prepare())
    app = create_app(settings)
    _err(f"Talkturo Recordings on http://{settings.server.host}:{settings.server.port}")
    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        proxy_headers=True,
        log_level="info",
        access_log=False,
        log_config=None,
        **WEBSOCKET_OPTIONS,
        # After the drain, requests still running (downloads) get this long to finish.
        timeout_graceful_shutdown=10,
    )
    _settle_heap()
    server = DrainingServer(config, settings.recording.drain_timeout_s)
    server.run()
    if not server.started:
        sys.exit(3)


def _settle_heap() -> None:
    """Keep the collector off what lives as long as the process (app, routes, templates).

    Every media frame allocates short-lived objects; the collector's older generations
    otherwise walk the whole heap again and again. Young objects are collected less often
    too (a frame's objects die long before 10,000 allocations).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _worker(settings: Settings) -> None:
    from web.runtime import run_worker_process

    asyncio.run(validate(settings, apply_migrations=False))
    asyncio.run(run_worker_process(settings))


def run(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> int:
    """Run one command; returns the exit status."""
    try:
        args = _build_parser().parse_args(argv)
    except UsageError as exc:
        _err(str(exc))
        return 2
    try:
        if args.command == "export" and args.export_command == "verify":
            # Offline: no settings, database or storage involved.
            return _verify(args)
        settings = load_settings(env)
        if args.command == "serve":
            if args.host:
                settings = _with_server(settings, host=args.host)
            if args.port is not None:
                if not 1 <= args.port <= 65535:
                    raise UsageError("talkturo serve: --port must be between 1 and 65535")
                settings = _with_server(settings, port=args.port)
            _serve(settings, args.demo)
            return 0
        if args.command == "worker":
            _worker(settings)
            return 0
        if args.command == "migrate":
            asyncio.run(migrate(settings.database))
            _err("Migrations applied.")
            return 0
        if args.command == "demo":
            from web.services.demo import seed_demo

            asyncio.run(_with_db(settings, lambda: seed_demo(settings, progress=sys.stderr)))
            return 0
        if args.command == "purge":
            asyncio.run(_with_db(settings, lambda: _purge(settings, args.dry_run)))
            return 0
        if args.command == "export":
            if not args.org or not args.out:
                raise UsageError("talkturo export: --org ORG_ID and --out FILE.zip are required")
            asyncio.run(_with_db(settings, lambda: _export(settings, args)))
            return 0
        handlers = {
            "org": _org_create,
            "user": _user_create,
            "apikey": _apikey_create,
        }
        created = asyncio.run(_with_db(settings, lambda: handlers[args.command](args)))
        _out(created)
        return 0
    except (UsageError, SettingsError) as exc:
        _err(str(exc))
        return 2
    except DomainError as exc:
        _err(f"talkturo {args.command}: {exc.detail}")
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        _err(f"talkturo {args.command}: {exc}")
        return 1


def _with_server(settings: Settings, **changes: Any) -> Settings:
    from dataclasses import replace

    return replace(settings, server=replace(settings.server, **changes))


def main() -> None:
    """Console-script entry point."""
    configure_logging()
    sys.exit(run())
