"""benchmarks/jobs.py still works: every row runs and no submission is refused.

Nothing here checks a timing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.pg import missing_postgres
from tests.test_examples_zoo_server import ROOT


def test_jobs_benchmark_quick_runs_every_row() -> None:
    reason = missing_postgres()
    if reason:
        pytest.skip(reason)
    done = subprocess.run([sys.executable, "-m", "benchmarks.jobs", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = re.findall(r"^(sqlite|postgresql) +(.+?) {2,}(\d+)  (.*)$", done.stdout, re.MULTILINE)
    assert len(rows) == 6, done.stdout
    assert all(notes.startswith("0 refused") for *_, notes in rows if notes), done.stdout
