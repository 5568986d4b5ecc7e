"""The suite never passes by skipping: a skip for a missing tool fails unless asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PROBE = """
import pytest

@pytest.fixture
def tool():
    pytest.skip("frobnicate is not installed")

def test_needs_tool(tool):
    pass

@pytest.mark.skip(reason="written into the test")
def test_marked():
    pass
"""


def _run(tmp_path: Path, allow: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "TALKTURO_TEST_ALLOW_SKIP"}
    if allow:
        env["TALKTURO_TEST_ALLOW_SKIP"] = "1"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-q",
            "-rA",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_skip_for_a_missing_tool_fails_the_run(tmp_path: Path) -> None:
    done = _run(tmp_path, allow=False)
    assert done.returncode == 1, done.stdout
    assert "frobnicate is not installed" in done.stdout
    assert "TALKTURO_TEST_ALLOW_SKIP=1" in done.stdout
    assert "1 skipped" in done.stdout  # the marked skip stays a skip


def test_skips_are_allowed_when_asked_for(tmp_path: Path) -> None:
    done = _run(tmp_path, allow=True)
    assert done.returncode == 0, done.stdout
    assert "2 skipped" in done.stdout
