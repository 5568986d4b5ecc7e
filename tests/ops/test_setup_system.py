"""`make test` checks the system first: what is missing is named in one line, with its command."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.bare import path_without
from tests.conftest import ROOT

SCRIPT = ROOT / ".ci" / "setup-system"


def _check(path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        ["/bin/bash", str(SCRIPT), "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_missing_tool_stops_with_one_line_and_the_install_command(tmp_path: Path) -> None:
    done = _check(path_without(tmp_path / "bin", {"sox", "espeak-ng"}))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "espeak-ng" in lines[0]
    assert "sox" in lines[0]
    assert "apt-get install -y --no-install-recommends espeak-ng sox" in lines[0]
    assert "ffmpeg" not in lines[0]


def test_nothing_missing_passes_quietly() -> None:
    done = _check(os.environ["PATH"])
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
