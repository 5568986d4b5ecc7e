"""Untrusted whole files are decoded and encoded in a child process (``python -m audio.convert``).

Some malformed files crash the native decoder; in a child that is a :class:`CorruptAudio`,
not a dead server. The child gets its job as JSON on stdin, writes the MP3 and peaks to the
paths it is given, and answers one JSON line on stdout.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from audio.errors import ERRORS_BY_NAME, AudioError, CorruptAudio
from audio.files import AudioSource, atomic_file, encode_files
from audio.mp3 import DEFAULT_BITRATE_KBPS
from audio.peaks import Peaks
from audio.writer import RecordingResult

DEFAULT_TIMEOUT_S = 300.0
DEFAULT_MEMORY_LIMIT_MB = 1024


def _child_command() -> list[str]:
    """The command that runs the child (a function so tests can substitute a crashing one)."""
    return [sys.executable, "-m", "audio.convert"]


def _stage(source: AudioSource, directory: Path, name: str) -> str:
    """A path the child can open: paths pass through, bytes and streams go to a temp file."""
    if isinstance(source, str | os.PathLike):
        return os.path.abspath(source)
    path = directory / name
    data = bytes(source) if isinstance(source, bytes | bytearray) else source.read()
    path.write_bytes(data)
    return str(path)


def decode_untrusted_to_mp3(
    caller: AudioSource | None = None,
    assistant: AudioSource | None = None,
    *,
    stereo: AudioSource | None = None,
    dest: str | os.PathLike[str],
    bitrate_kbps: int = DEFAULT_BITRATE_KBPS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB,
    redact_dtmf: bool = True,
    cpu_limit_s: float | None = None,
) -> RecordingResult:
    """Like :func:`encode_files`, in a child process, for files from outside. Blocking.

    The MP3 appears at ``dest`` only on success; nothing is left behind on failure. A child
    that crashes, runs out of memory, or exceeds ``timeout_s`` of wall time or ``cpu_limit_s``
    of CPU (``timeout_s`` when not given) is killed and raises :class:`CorruptAudio`; it runs
    at a lower priority than its parent, so live work comes first;
    other problems raise the same :class:`AudioError` subclass :func:`encode_files` would.
    Call it from async code with ``asyncio.to_thread``.
    """
    if (stereo is None) == (caller is None and assistant is None) or (
        stereo is None and (caller is None or assistant is None)
    ):
        raise ValueError("give either caller and assistant, or stereo")
    target = Path(dest)
    with tempfile.TemporaryDirectory(prefix="audio-convert-") as work:
        directory = Path(work)
        job: dict[str, Any] = {
            "dest": str(directory / "out.mp3"),
            "peaks": str(directory / "peaks.dat"),
            "bitrate_kbps": bitrate_kbps,
            "memory_limit_mb": memory_limit_mb,
            "redact_dtmf": redact_dtmf,
            "cpu_limit_s": max(1, math.ceil(timeout_s if cpu_limit_s is None else cpu_limit_s)),
        }
        if stereo is not None:
            job["stereo"] = _stage(stereo, directory, "stereo.in")
        else:
            assert caller is not None
            assert assistant is not None
            job["caller"] = _stage(caller, directory, "caller.in")
            job["assistant"] = _stage(assistant, directory, "assistant.in")
        answer = _run_child(job, timeout_s)
        if "error" in answer:
            error = ERRORS_BY_NAME.get(str(answer["error"]), AudioError)
            raise error(str(answer.get("message") or "") or None)
        peaks = Peaks.from_bytes(Path(job["peaks"]).read_bytes())
        if _same_device(directory, target):
            Path(job["dest"]).replace(target)
        else:
            _copy_into(Path(job["dest"]), target)

    return RecordingResult(
        mp3_tail=b"",
        duration_ms=int(answer["duration_ms"]),
        size_bytes=int(answer["size_bytes"]),
        sha256=str(answer["sha256"]),
        peaks=peaks,
        sample_rate=int(answer["sample_rate"]),
        bitrate_kbps=int(answer["bitrate_kbps"]),
        start_offset_ms=float(answer["start_offset_ms"]),
        redactions=tuple(answer.get("redactions", ())),
    )


def _run_child(job: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    try:
        # ``-m`` finds this package from the working directory; the environment is inherited.
        done = subprocess.run(
            _child_command(),
            input=json.dumps(job).encode(),
            capture_output=True,
            timeout=timeout_s,
            cwd=_package_root(),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CorruptAudio("decoding the audio took too long; the file may be damaged") from exc
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise CorruptAudio("decoding the audio took too long; the file may be damaged")
    if done.returncode != 0 or not lines:
        raise CorruptAudio("the audio file is damaged: the decoder failed on it")
    try:
        answer: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise CorruptAudio("the audio file is damaged: the decoder failed on it") from exc
    return answer


def _package_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


def _same_device(directory: Path, target: Path) -> bool:
    return directory.stat().st_dev == target.parent.stat().st_dev


def _copy_into(source: Path, target: Path) -> None:
    """Copy to a temp name beside ``target`` and rename, so ``target`` is never partial."""
    with atomic_file(target) as out, source.open("rb") as src:
        while chunk := src.read(1 << 20):
            out.write(chunk)


def _limit(megabytes: int, cpu_seconds: int) -> None:
    """Cap this child's memory and CPU time, and let the server's own work go first."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        # SIGXCPU at the soft limit, SIGKILL a second later.
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    with contextlib.suppress(OSError):
        os.nice(10)


def main() -> int:
    """Child entry point: one JSON job on stdin, one JSON answer on stdout."""
    job = json.loads(sys.stdin.buffer.read())
    _limit(
        int(job.get("memory_limit_mb", DEFAULT_MEMORY_LIMIT_MB)),
        int(job.get("cpu_limit_s", DEFAULT_TIMEOUT_S)),
    )
    try:
        result = encode_files(
            job.get("caller"),
            job.get("assistant"),
            stereo=job.get("stereo"),
            dest=job["dest"],
            bitrate_kbps=int(job["bitrate_kbps"]),
            redact_dtmf=bool(job.get("redact_dtmf", True)),
        )
    except AudioError as exc:
        answer: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
    except MemoryError:
        answer = {"error": "CorruptAudio", "message": "the audio file needs too much memory"}
    else:
        Path(job["peaks"]).write_bytes(result.peaks.to_bytes())
        answer = {
            "duration_ms": result.duration_ms,
            "size_bytes": result.size_bytes,
            "sha256": result.sha256,
            "sample_rate": result.sample_rate,
            "bitrate_kbps": result.bitrate_kbps,
            "start_offset_ms": result.start_offset_ms,
            "redactions": list(result.redactions),
        }
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
