"""Server CPU per live call-second against the ``lame`` command on the same audio.

One ``talkturo serve`` process (SQLite, local storage) on loopback; a separate load-generator
process streams N calls at real-time pace as 20 ms Twilio frames (caller mu-law 8 kHz,
assistant L16 24 kHz, espeak-ng speech, frames encoded before the clock starts). Once every
stream is running, the server's CPU (utime + stime from ``/proc/<pid>/stat``) is read over a
steady window and divided by the call-seconds streamed in it (the frames the generator sent
in the window, so a generator behind its schedule does not flatter the server). The
reference, measured in the same run between the rounds: ``lame`` encoding the same call as
stereo at the recording's rate and bitrate (24 kHz, 32 kbps CBR), CPU of the child divided
by the audio's seconds. Two more references are printed beside it: ``lame -q 7``, the
mode the server's encoder runs in (LAME's fast mode; the target's ``lame`` runs at its
default, -q 3), and the server's own encoder alone (``audio.mp3.Mp3StreamEncoder``, LAME
through lameenc) encoding the same WAV in 480 ms blocks in a child process, its CPU around
the encode only. The references differ by machine (one machine's Debian ``lame`` took
4.3 ms per second, another's 25 ms), so the ratio against the encoder alone is the
machine-independent one. The
generator's own CPU is printed too, so it is never the bottleneck. Target: ratio <= 1.5.

The floor, measured in each round with the same calls: uvicorn, configured as ``talkturo
serve`` configures it, serving a bare ASGI app that accepts each media socket and drops every
frame (``bench/_floor_app.py``). That is what the server stack costs before any of our code
runs; it is printed against ``lame``, alone and with the encoder alone added.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


async def _generate(url: str, key: str, calls: list[str], seconds: int, warmup: float) -> None:
    import websockets

    from bench._common import send_paced
    from bench.bench_ingest_load import START, _frames

    frames = _frames(seconds)
    start = json.dumps({**START, "start": {**START["start"], "customParameters": {"token": key}}})
    worst = 0.0
    sent = 0  # frame pairs (20 ms of call) sent so far, over every stream
    n = len(calls)
    t_begin = time.monotonic()

    def counted(lag: float) -> None:
        nonlocal worst, sent
        sent += 1
        worst = max(worst, lag)

    async def one(call_id: str, offset: float) -> None:
        await asyncio.sleep(offset)
        # No keepalive pings: on a busy machine a late pong must not end a stream.
        url_ = f"{url}/api/v1/calls/{call_id}/media"
        async with websockets.connect(url_, ping_interval=None) as ws:
            await ws.send(start)
            await send_paced(ws, frames, counted)
            await ws.send(json.dumps({"event": "stop"}))
            await ws.wait_closed()

    async def marks() -> None:
        # The window: every stream running (after a warm-up), ending well before the first stop.
        await asyncio.sleep(warmup)
        print(f"steady-start {sent}", flush=True)
        await asyncio.sleep(seconds - warmup)
        print(f"steady-end {sent}", flush=True)

    cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    # Real calls start at random times: spread the starts over a second, so batches interleave.
    await asyncio.gather(marks(), *(one(c, 1.0 * i / n) for i, c in enumerate(calls)))
    cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu0
    wall = time.monotonic() - t_begin
    print(json.dumps({"max_send_lag_s": worst, "gen_cpu_s": cpu, "gen_wall_s": wall}), flush=True)


def generator_main(args: argparse.Namespace) -> int:
    calls = Path(args.calls_file).read_text().split()
    asyncio.run(_generate(args.url, args.key, calls, args.seconds, args.warmup))
    return 0


def lame_ms_per_second(wav: Path, out: Path, seconds: float, *quality: str) -> float:
    """CPU of ``lame`` encoding ``wav`` at 24 kHz, 32 kbps CBR stereo, per second of audio
    (``quality``: extra options such as ``-q 7``)."""
    options = ["--quiet", "--cbr", "-b", "32", "--resample", "24", "-m", "j", *quality]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["lame", *options, str(wav), str(out)], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu * 1000 / seconds


_LIBRARY_ENCODE = """
import resource, sys, wave
import numpy as np
sys.path.insert(0, sys.argv[3])
from audio.mp3 import Mp3StreamEncoder
with wave.open(sys.argv[1]) as f:
    pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").reshape(-1, 2).T.copy()
encoder = Mp3StreamEncoder(24000, 32)
block = 24000 * 480 // 1000
t0 = resource.getrusage(resource.RUSAGE_SELF)
parts = [encoder.write(pcm[:, i : i + block]) for i in range(0, pcm.shape[1], block)]
parts.append(encoder.close())
t1 = resource.getrusage(resource.RUSAGE_SELF)
open(sys.argv[2], "wb").write(b"".join(parts))
print((t1.ru_utime - t0.ru_utime) + (t1.ru_stime - t0.ru_stime))
"""


def library_ms_per_second(wav: Path, out: Path, seconds: float) -> float:
    """CPU of the server's encoder alone on ``wav`` (24 kHz, 32 kbps CBR stereo), per second."""
    root = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", _LIBRARY_ENCODE, str(wav), str(out), root],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(done.stdout.strip()) * 1000 / seconds


def write_stereo_wav(path: Path, seconds: int) -> None:
    """The bench call as a stereo 16-bit WAV at 24 kHz (the recording's own rate)."""
    import numpy as np

    from bench._common import make_call

    _, _, stereo = make_call(seconds)
    pcm = (np.clip(stereo.T, -1, 1 - 1 / 32768) * 32768).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(24000)
        handle.writeframes(pcm.tobytes())


def one_round(
    server_pid: int, base: str, key: str, asst: str, n: int, seconds: int, warmup: float, work: Path
) -> tuple[dict[str, float], list[str]]:
    """Stream ``n`` calls once; server ms of CPU per call-second over the steady window, and
    the generator's command (to stream the same calls elsewhere)."""
    import httpx

    from bench._common import generator_command

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as h:
        _, command = generator_command(
            __file__,
            h,
            asst,
            n,
            work / f"calls-{time.monotonic_ns()}.txt",
            base=base,
            key=key,
            seconds=seconds,
            extra=("--warmup", str(warmup)),
        )
    return measure(server_pid, command), command


def measure(server_pid: int, command: list[str]) -> dict[str, float]:
    """Run the generator ``command``; the CPU of ``server_pid`` per call-second it streamed."""
    gen = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert gen.stdout is not None
    marks: dict[str, tuple[float, float, int]] = {}
    stats: dict[str, float] = {}
    for line in gen.stdout:
        if line.startswith("steady-"):
            name, pairs = line.split()
            marks[name] = (time.monotonic(), cpu_seconds(server_pid), int(pairs))
        elif line.startswith("{"):
            stats = json.loads(line)
    if gen.wait() != 0 or len(marks) != 2 or not stats:
        raise RuntimeError("the generator failed")
    (t0, c0, p0), (t1, c1, p1) = marks["steady-start"], marks["steady-end"]
    # The call time actually streamed in the window (a generator behind its schedule sends
    # less than n x the window): 20 ms per frame pair.
    call_seconds = (p1 - p0) * 0.02
    return {
        "server_ms_per_call_s": (c1 - c0) * 1000 / call_seconds,
        "server_cores": (c1 - c0) / (t1 - t0),
        "gen_cores": stats["gen_cpu_s"] / stats["gen_wall_s"],
        "max_send_lag_s": stats["max_send_lag_s"],
    }


_FLOOR_SERVE = """
import sys, uvicorn
from web.cli import WEBSOCKET_OPTIONS
uvicorn.run("bench._floor_app:app", host="127.0.0.1", port=int(sys.argv[1]),
            access_log=False, log_level="warning", **WEBSOCKET_OPTIONS)
"""


def floor_ms_per_call_second(command: list[str], work: Path) -> float:
    """The same calls streamed at uvicorn serving ``bench/_floor_app.py`` (every frame read and
    dropped), configured as ``talkturo serve`` configures it: its CPU per call-second."""
    from tests.conftest import free_port, wait_for_port

    port = free_port()
    root = Path(__file__).resolve().parent.parent
    log = (work / "floor.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", _FLOOR_SERVE, str(port)],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc=proc)
        url = command.index("--url") + 1
        command = [*command[:url], f"ws://127.0.0.1:{port}", *command[url + 1 :]]
        return measure(proc.pid, command)["server_ms_per_call_s"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--calls-file")
    parser.add_argument("--calls", type=int, default=40, help="concurrent calls per round")
    parser.add_argument("--seconds", type=int, default=30, help="length of each call")
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-arg", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        return generator_main(args)

    from bench._common import progress, start_local_server, verdict

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wav = work / "call.wav"
        lame_seconds = 60
        write_stereo_wav(wav, lame_seconds)
        local = start_local_server(work)
        server, key, asst = local.server, local.key, local.assistant_id
        ratios: list[float] = []
        library_ratios: list[float] = []
        fast_ratios: list[float] = []
        floor_ratios: list[float] = []
        floor_library_ratios: list[float] = []
        try:
            for r in range(args.rounds):
                lame_before = lame_ms_per_second(wav, work / "out.mp3", lame_seconds)
                progress(f"round {r + 1}: {args.calls} calls x {args.seconds} s ...")
                res, command = one_round(
                    server.proc.pid,
                    server.url,
                    key,
                    asst,
                    args.calls,
                    args.seconds,
                    args.warmup,
                    work,
                )
                lame_after = lame_ms_per_second(wav, work / "out.mp3", lame_seconds)
                lame = (lame_before + lame_after) / 2
                ratio = res["server_ms_per_call_s"] / lame
                ratios.append(ratio)
                library = library_ms_per_second(wav, work / "lib.mp3", lame_seconds)
                library_ratios.append(res["server_ms_per_call_s"] / library)
                fast = lame_ms_per_second(wav, work / "q7.mp3", lame_seconds, "-q", "7")
                fast_ratios.append(res["server_ms_per_call_s"] / fast)
                floor = floor_ms_per_call_second(command, work)
                floor_ratios.append(floor / lame)
                floor_library_ratios.append((floor + library) / lame)
                print(
                    f"round {r + 1}: server {res['server_ms_per_call_s']:.2f} ms CPU per "
                    f"call-second ({res['server_cores']:.2f} cores), lame {lame:.2f} ms "
                    f"({lame_before:.2f}/{lame_after:.2f}), ratio {ratio:.2f}; generator "
                    f"{res['gen_cores']:.2f} cores, max send lag "
                    f"{res['max_send_lag_s'] * 1000:.0f} ms; lame -q 7 {fast:.2f} ms, ratio "
                    f"{fast_ratios[-1]:.2f}; the server's encoder alone {library:.2f} ms, "
                    f"ratio {library_ratios[-1]:.2f}; the floor: uvicorn reading and dropping "
                    f"the same frames {floor:.2f} ms, {floor_ratios[-1]:.2f} of lame, plus the "
                    f"encoder alone {floor_library_ratios[-1]:.2f} of lame",
                    flush=True,
                )
        finally:
            server.stop()
    median = statistics.median(ratios)
    spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
    print(f"ratio over {len(ratios)} rounds: median {median:.2f}, range {spread}")
    for name, values in (("lame -q 7", fast_ratios), ("the encoder alone", library_ratios)):
        print(
            f"ratio against {name}: median {statistics.median(values):.2f}, "
            f"range {min(values):.2f}-{max(values):.2f}"
        )
    for name, values in (
        ("uvicorn reading and dropping the frames", floor_ratios),
        ("that plus the encoder alone", floor_library_ratios),
    ):
        print(
            f"the floor, {name}, against lame: median {statistics.median(values):.2f}, "
            f"range {min(values):.2f}-{max(values):.2f}"
        )
    return 0 if verdict("server CPU per call-second / lame", median, 1.5, at_most=True) else 1


if __name__ == "__main__":
    sys.exit(main())
