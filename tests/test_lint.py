"""Lint as a habit: ruff, configured in pyproject.toml, passes on restkit/ and examples/.

The rules (``[tool.ruff]``): pycodestyle errors and warnings, pyflakes, lines
of at most 120 characters and a McCabe complexity of at most 15.  A function
that must stay whole on a hot path says why in a ``# PERF:`` comment and
carries ``# noqa: C901`` on its ``def`` line alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_passes_on_the_package_and_the_examples() -> None:
    pytest.importorskip("ruff", reason="ruff is a test dependency: pip install '.[test]'")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "restkit", "examples"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"ruff check restkit examples:\n{result.stdout}{result.stderr}"
