"""Headless Chromium for the tests: one way to run it, bounded in time.

The flags are the ones this sandbox needs: no sandbox (root), no GPU, and no
background networking (the machine has no network but loopback).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian package chromium)")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
)


def run_chromium(
    *args: str,
    tmp_path: Path,
    size: str = "1100,900",
    budget_ms: int = 5000,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a fresh profile; ``args`` end with the URL.

    ``--virtual-time-budget`` lets the page's scripts and requests run before
    ``--dump-dom`` or ``--screenshot`` reads it.  A browser that hangs is
    killed with its whole process group after ``timeout`` seconds.
    """
    assert CHROMIUM is not None, "mark the test with needs_chromium"
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
               f"--virtual-time-budget={budget_ms}", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, env=None if env is None else dict(env))
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
