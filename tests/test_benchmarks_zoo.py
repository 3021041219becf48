"""benchmarks/zoo.py still works: every configuration runs and every answer of the mix is a 2xx.

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


def test_zoo_benchmark_quick_runs_every_configuration() -> None:
    reason = missing_postgres()
    if reason:
        pytest.skip(reason)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.zoo", "--quick", "--procs", "1", "--threads", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = re.findall(r"^(sqlite|postgresql), .* (\d+\.\d\d)%$", done.stdout, re.MULTILINE)
    assert len(rows) == 5, done.stdout
    assert all(share == "0.00" for _, share in rows), done.stdout
    assert "scaling over 1 PostgreSQL instance" in done.stdout
