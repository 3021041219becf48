"""restkit now against restkit at an earlier commit, with Falcon, in one run.

Run ``python -m benchmarks.baseline COMMIT`` from the top of a git checkout.
The package at ``COMMIT`` is exported (``git archive``) to a temporary
directory as ``restkit_baseline`` (its imports are relative, so it runs
under that name beside the working tree's ``restkit``), and restkit's own
adapter is built on it.  Every repeat runs every scenario on the three apps
in turn, as ``benchmarks.inprocess`` does; the table shows the median
calls/s, and the ratios as the median of the ratios within each repeat,
which a slow moment of the machine moves far less than a ratio of medians.
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import types
from pathlib import Path
from typing import Any

from . import inprocess
from .adapters import SCENARIOS, Scenario, apps_for, environ_for, load

ADAPTER = Path(__file__).resolve().parent / "adapters" / "restkit.py"


def baseline_adapter(commit: str, directory: Path) -> types.ModuleType:
    """restkit's adapter at ``commit``, built on the restkit package of ``commit``."""
    archive = directory / "restkit.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", commit, "restkit"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(directory / "src", filter="data")
    (directory / "src" / "restkit").rename(directory / "src" / "restkit_baseline")
    sys.path.insert(0, str(directory / "src"))
    shown = subprocess.run(["git", "show", f"{commit}:benchmarks/adapters/restkit.py"], capture_output=True, text=True)
    source = shown.stdout if shown.returncode == 0 else ADAPTER.read_text(encoding="utf-8")
    source = re.sub(r"^from restkit\b", "from restkit_baseline", source, flags=re.M)
    source = source.replace("from . import", "from benchmarks.adapters import")
    module = types.ModuleType("restkit_baseline_adapter")
    exec(compile(source, f"{commit}:benchmarks/adapters/restkit.py", "exec"), module.__dict__)
    return module


def _status(app: inprocess.WSGIApp, scenario: Scenario) -> str:
    """The status line ``app`` answers ``scenario`` with."""
    seen: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen.append(status)

    result = app(environ_for(scenario), start_response)
    for _chunk in result:
        pass
    getattr(result, "close", lambda: None)()
    return seen[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline", description=__doc__.split("\n\n")[0])
    parser.add_argument("commit", help="the earlier commit, e.g. main or 0eca398")
    parser.add_argument("--repeats", type=int, default=9, help="timed repeats per scenario (default 9)")
    parser.add_argument("--seconds", type=float, default=0.1, help="length of one repeat per app (default 0.1)")
    parser.add_argument("--cpu-time", action="store_true", help="time by this thread's CPU time, not wall time")
    args = parser.parse_args(argv)
    if args.cpu_time:
        inprocess.clock = time.thread_time
    with tempfile.TemporaryDirectory(prefix="restkit-baseline-") as tmp:
        makers = {"before": baseline_adapter(args.commit, Path(tmp)), "after": load("restkit"), "falcon": load("falcon")}
        apps = {name: apps_for(maker) for name, maker in makers.items()}
        # A scenario added since the commit is not served alike by the old adapter: left out.
        scenarios, left_out = [], []
        for s in SCENARIOS:
            alike = _status(apps["before"][s.app_key], s) == _status(apps["after"][s.app_key], s)
            (scenarios if alike else left_out).append(s)
        plan = {(s.key, name): inprocess.calibrate(by_count[s.app_key], s, args.seconds)
                for s in scenarios for name, by_count in apps.items()}
        rates: dict[str, dict[str, list[float]]] = {s.key: {name: [] for name in apps} for s in scenarios}
        for repeat in range(args.repeats):
            for scenario in scenarios:
                for name, by_count in apps.items():
                    calls = plan[scenario.key, name]
                    gc.collect()
                    rates[scenario.key][name].append(calls / inprocess.time_calls(by_count[scenario.app_key], scenario, calls))
            print(f"  repeat {repeat + 1}/{args.repeats} done", file=sys.stderr, flush=True)

    def ratio(key: str, ours: str, theirs: str) -> float:
        return inprocess.paired_ratio(rates[key][ours], rates[key][theirs])

    k = inprocess._k
    print(f"# restkit now and at {args.commit}, median of {args.repeats} repeats{', CPU time' if args.cpu_time else ''}")
    print()
    print(f"| scenario | restkit {args.commit} | restkit now | now / {args.commit} | Falcon (pure Python) "
          f"| {args.commit} / Falcon | now / Falcon |")
    print("|---|---|---|---|---|---|---|")
    for s in scenarios:
        med = {name: statistics.median(values) for name, values in rates[s.key].items()}
        print(f"| {s.title} | {k(med['before'])} | {k(med['after'])} | {ratio(s.key, 'after', 'before'):.2f}x "
              f"| {k(med['falcon'])} | {ratio(s.key, 'before', 'falcon'):.2f}x | {ratio(s.key, 'after', 'falcon'):.2f}x |")
    for s in left_out:
        print(f"\n(left out: {s.title}, which restkit at {args.commit} does not answer alike)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
