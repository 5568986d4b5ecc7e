"""Shared bench helpers: a realistic two-leg call made from espeak-ng speech, progress output."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

T = TypeVar("T")

CALLER_LINES = [
    "Hi, I am calling about my order. It has not arrived yet.",
    "The order number is four five six seven. I placed it two weeks ago.",
    "Can you tell me when it will be delivered? I need it before the weekend.",
    "Okay, and if it does not come by Friday, can I get a refund?",
]
ASSISTANT_LINES = [
    "Thank you for calling. I am sorry to hear that, let me look it up for you.",
    "I found your order. It shipped on Monday and is with the courier now.",
    "It should arrive by Thursday afternoon. I will send you the tracking link.",
    "Yes, if it is late you can request a full refund from your account page.",
]


def _speak(text: str, voice: str, rate: int, directory: Path, name: str) -> npt.NDArray[np.int16]:
    raw, out = directory / f"{name}.raw.wav", directory / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", "-R", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(out)], check=True
    )
    with wave.open(str(out)) as handle:
        return np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").copy()


def mulaw_encode(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """G.711 mu-law encoding (the inverse of the recorder's table)."""
    x = samples.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def make_call(seconds: int) -> tuple[bytes, bytes, npt.NDArray[np.float32]]:
    """A turn-taking call: (caller mu-law 8 kHz, assistant L16 24 kHz, stereo float32 at 24 kHz)."""
    with tempfile.TemporaryDirectory() as work:
        directory = Path(work)
        caller_turns = [
            _speak(t, "en-us", 8000, directory, f"c{i}") for i, t in enumerate(CALLER_LINES)
        ]
        assistant_turns = [
            _speak(t, "en-gb+f3", 24000, directory, f"a{i}") for i, t in enumerate(ASSISTANT_LINES)
        ]
    caller = np.zeros(seconds * 8000, dtype=np.int16)
    assistant = np.zeros(seconds * 24000, dtype=np.int16)
    # Turns alternate, caller first, each placed at time t on its own leg's rate, with a
    # pause after it: until one no longer fits.
    legs = ((caller, caller_turns, 8000, 0.4), (assistant, assistant_turns, 24000, 0.5))
    t, turn, fits = 0.3, 0, True
    while fits:
        for track, turns, rate, pause in legs:
            speech = turns[turn % len(turns)]
            start = int(t * rate)
            fits = start + len(speech) <= len(track)
            if not fits:
                break
            track[start : start + len(speech)] = speech
            t += len(speech) / rate + pause
        turn += 1
    stereo = np.stack(
        (np.repeat(caller, 3).astype(np.float32) / 32768, assistant.astype(np.float32) / 32768)
    )
    return mulaw_encode(caller).tobytes(), assistant.astype("<i2").tobytes(), stereo


def chunked(caller: bytes, assistant: bytes, chunk_ms: int = 20) -> list[tuple[str, int, bytes]]:
    """Interleaved 20 ms chunks of both legs, as they arrive on a media stream."""
    out: list[tuple[str, int, bytes]] = []
    step_c, step_a = 8 * chunk_ms, 48 * chunk_ms
    for k in range(len(caller) // step_c):
        out.append(("caller", k * chunk_ms, caller[k * step_c : (k + 1) * step_c]))
        out.append(("assistant", k * chunk_ms, assistant[k * step_a : (k + 1) * step_a]))
    return out


def post_call(http: Any, assistant_id: str) -> str:
    """Create an inbound call of ``assistant_id`` through the API (an httpx client); its id."""
    r = http.post(
        "/api/v1/calls",
        json={
            "assistant_id": assistant_id,
            "direction": "inbound",
            "from_number": "+14155550100",
            "to_number": "+14155550101",
        },
    )
    r.raise_for_status()
    return str(r.json()["id"])


async def send_paced(
    ws: Any, frames: list[tuple[str, str]], on_sent: Callable[[float], None]
) -> None:
    """Send each (inbound, outbound) frame pair on ``ws`` 20 ms after the last, from now;
    ``on_sent(lag)`` after each pair with how late it went out, in seconds."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for k, (inbound, outbound) in enumerate(frames):
        due = t0 + k * 0.02
        now = loop.time()
        if due > now:
            await asyncio.sleep(due - now)
        await ws.send(inbound)
        await ws.send(outbound)
        on_sent(loop.time() - due)


def generator_command(
    script: str,
    http: Any,
    assistant_id: str,
    n: int,
    calls_file: Path,
    *,
    base: str,
    key: str,
    seconds: int,
    extra: tuple[str, ...] = (),
) -> tuple[list[str], list[str]]:
    """Create ``n`` calls through the API (``http``, an httpx client of ``base``) and list
    them in ``calls_file``: their ids, and the command that runs ``script``'s load
    generator over them (``--generate``) for ``seconds``."""
    calls = [post_call(http, assistant_id) for _ in range(n)]
    calls_file.write_text("\n".join(calls))
    command = [
        sys.executable,
        script,
        "--generate",
        "--url",
        base.replace("http://", "ws://"),
        "--key",
        key,
        "--calls-file",
        str(calls_file),
        "--seconds",
        str(seconds),
        *extra,
    ]
    return calls, command


BENCH_SECRET_KEY = "bench-secret-key-0123456789"


async def _org_with_key(settings: Any) -> tuple[str, str]:
    """A fresh database with one PRO org: (its admin API key, the id of its assistant)."""
    from web.db import close_db, migrate, open_db
    from web.models import Plan
    from web.services.accounts import create_api_key, create_org
    from web.services.assistants import create_assistant

    await migrate(settings.database)
    await open_db(settings.database)
    org = await create_org("Load", Plan.PRO)
    _, key = await create_api_key(org, "load")
    asst = await create_assistant(org.id, "Ava", True)
    await close_db()
    return key, str(asst.id)


@dataclass
class LocalServer:
    """A ``talkturo serve`` process on SQLite and local storage (no embedded worker)."""

    server: Any
    settings: Any
    key: str
    assistant_id: str

    def stop(self) -> None:
        self.server.stop()


def start_local_server(work: Path) -> LocalServer:
    """Start a server whose data lives under ``work``, with one org, key and assistant."""
    from tests.conftest import start_server
    from web.settings import load_settings

    env = {
        "TALKTURO_DATA_DIR": str(work / "data"),
        "TALKTURO_SECRET_KEY": BENCH_SECRET_KEY,
        "TALKTURO_EMBEDDED_WORKER": "0",
        # One key streams every call of a load level (150 and more).
        "TALKTURO_MEDIA_SOCKETS_PER_KEY": "1000",
    }
    settings = load_settings(env)
    key, asst = asyncio.run(_org_with_key(settings))
    return LocalServer(start_server(env, work / "server.log"), settings, key, asst)


@contextlib.contextmanager
def moto_s3() -> Iterator[tuple[str, str, Any]]:
    """moto_server on a free port for the block: (its endpoint, a fresh bucket, a boto3 client)."""
    from tests.conftest import MotoServer, _spawn_moto, create_bucket, free_port, s3_client

    port = free_port()
    moto = MotoServer(_spawn_moto(port), port)
    try:
        yield moto.endpoint, create_bucket(moto.endpoint), s3_client(moto.endpoint)
    finally:
        moto.stop()


@dataclass
class S3Site:
    """A work folder, a moto_server bucket, and ``serve()`` for a server over both."""

    work: Path
    endpoint: str
    bucket: str
    s3: Any
    servers: list[Any]

    @property
    def db_url(self) -> str:
        return f"sqlite://{self.work}/talkturo.sqlite3"

    def serve(self) -> Any:
        """Start ``talkturo serve`` on the SQLite database, recordings under ``rec/``."""
        from tests.conftest import make_s3_env, start_server

        env = make_s3_env(self.work / "data", self.db_url, self.endpoint, self.bucket)
        server = start_server(env, self.work / "server.log")
        self.servers.append(server)
        return server


@contextlib.contextmanager
def s3_site(prefix: str) -> Iterator[S3Site]:
    """An :class:`S3Site` in a new temporary folder; its servers and moto_server stopped after."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    with moto_s3() as (endpoint, bucket, s3):
        site = S3Site(work, endpoint, bucket, s3, [])
        try:
            yield site
        finally:
            for server in site.servers:
                server.stop()


def _fresh_sqlite(db_url: str) -> None:
    """Create the SQLite database at ``db_url`` with every migration applied."""
    from web.db import close_db, migrate
    from web.settings import DatabaseSettings

    async def run() -> None:
        await migrate(DatabaseSettings(db_url))
        await close_db()

    asyncio.run(run())


def seed_sqlite(db_url: str, seed: Callable[[], Awaitable[T]]) -> T:
    """A fresh SQLite database at ``db_url``, then ``seed()`` run with it open; its result."""
    from tests.conftest import in_thread
    from web.db import close_db, open_db
    from web.settings import DatabaseSettings

    _fresh_sqlite(db_url)

    async def run() -> T:
        await open_db(DatabaseSettings(db_url))
        try:
            return await seed()
        finally:
            await close_db()

    result: T = in_thread(run())
    return result


def drain(client: Any, url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET ``url`` with an httpx client, reading the body as it comes: (bytes, SHA-256)."""
    digest = hashlib.sha256()
    got = 0
    with client.stream("GET", url, headers=headers) as r:
        r.raise_for_status()
        for chunk in r.iter_raw(1 << 20):
            got += len(chunk)
            digest.update(chunk)
    return got, digest.hexdigest()


def alternating_ratios(
    subject: Callable[[], tuple[float, Any]],
    reference: Callable[[], tuple[float, Any]],
    rounds: int,
    names: tuple[str, str],
    check: Callable[[Any], None],
) -> list[float]:
    """Per round, the rate of ``subject`` over the rate of ``reference`` (each returns
    ``(bytes per second, result)``; ``check`` judges the result). Rounds alternate which
    goes first: the second of a pair tends to be the slower one, whichever it is."""
    ratios = []
    for i in range(rounds):
        order = (reference, subject) if i % 2 == 0 else (subject, reference)
        rates = {}
        for fetch in order:
            rate, result = fetch()
            check(result)
            rates[fetch] = rate
        ratios.append(rates[subject] / rates[reference])
        progress(
            f"round {i + 1}/{rounds}: {names[0]} {rates[reference] / 2**20:.0f} MB/s, "
            f"{names[1]} {rates[subject] / 2**20:.0f} MB/s, ratio {ratios[-1]:.3f}"
        )
    return ratios


class PeakRss(threading.Thread):
    """Samples the RSS of a process (and, apart, the peak of its children) every
    ``interval`` seconds while the ``with`` block runs."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        import psutil

        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.baseline = self.peak = self.proc.memory_info().rss
        self.child_peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        import psutil

        while not self.done.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
                for child in self.proc.children():
                    self.child_peak = max(self.child_peak, child.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 2**20


@contextlib.contextmanager
def served_sqlite(work: Path, seed: Callable[[Path], Awaitable[T]]) -> Iterator[tuple[str, T]]:
    """``seed(recordings folder)`` on a fresh SQLite database in ``work``, then
    ``talkturo serve`` over it (local storage) for the block: (its URL, the seed's result)."""
    from tests.conftest import make_env, start_server

    db_url = f"sqlite://{work}/talkturo.sqlite3"
    result = seed_sqlite(db_url, lambda: seed(work / "data" / "recordings"))
    server = start_server(make_env(work / "data", db_url), work / "server.log")
    try:
        yield server.url, result
    finally:
        server.stop()


@contextlib.contextmanager
def chromium(*extra_args: str, **context_args: Any) -> Iterator[tuple[Any, Any]]:
    """Headless Chromium (the system's) for the block: a new context and its page."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
        context = browser.new_context(**context_args)
        try:
            yield context, context.new_page()
        finally:
            browser.close()


@contextlib.asynccontextmanager
async def signed_in_client(
    db_url: str, data_dir: Path, email: str, password: str
) -> AsyncIterator[Any]:
    """The app in this process over ``db_url`` (no worker), and a test client of it signed
    in as ``email``."""
    from litestar.testing import AsyncTestClient

    from web.app import create_app
    from web.settings import load_settings

    env = {
        "TALKTURO_DATA_DIR": str(data_dir),
        "TALKTURO_DATABASE_URL": db_url,
        "TALKTURO_SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "TALKTURO_EMBEDDED_WORKER": "0",
    }
    app = create_app(load_settings(env))
    async with AsyncTestClient(app=app, base_url="http://bench.local") as client:
        page = await client.get("/login")
        token = page.cookies.get("talkturo_csrf") or client.cookies.get("talkturo_csrf")
        resp = await client.post(
            "/login", data={"email": email, "password": password, "_csrf_token": token}
        )
        assert resp.status_code in {200, 303}, resp.text
        yield client


def median_spread(values: list[float], unit: str = "ms") -> tuple[float, str]:
    """The median of ``values`` and its description: ``median M ms (min A, max B)``."""
    ordered = sorted(values)
    median = ordered[len(ordered) // 2]
    text = f"median {median:.0f} {unit} (min {ordered[0]:.0f}, max {ordered[-1]:.0f})"
    return median, text


def progress(message: str) -> None:
    """One progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def verdict(name: str, value: float, target: float, *, at_most: bool) -> bool:
    """Print the PASS/FAIL line for a target and return whether it passed."""
    ok = value <= target if at_most else value >= target
    sign = "<=" if at_most else ">="
    print(f"{'PASS' if ok else 'FAIL'}: {name} = {value:.3g} (target {sign} {target:g})")
    return ok
