"""Instructions per call of each framework in each scenario, counted by valgrind.

Run ``python -m benchmarks.instructions`` (``--help`` for options).  On a
shared 2-core machine the calls/s of :mod:`benchmarks.inprocess` move by 20%
from one run to the next; the number of instructions a call executes moves by
well under 1%, so a change of a few percent on a hot path shows here when it
is lost in the noise there.  It is not a speed: a cache miss costs more than
an addition, and the C encoder's instructions are cheaper than the
interpreter's.  Use it to see a change, and calls/s to report one.

For each scenario and framework, the same calls that ``inprocess`` times run
twice under ``valgrind --tool=callgrind`` in a fresh interpreter, ``few``
times and ``few + many`` times; the difference divided by ``many`` is what one
call costs, without the start-up.  ``--root DIR`` counts the restkit found in
another checkout (``git worktree add /tmp/old main``), for a before/after.

``--server-path`` counts instead what one request costs in restkit's server
(:mod:`benchmarks.server_path`: the connection, the exchange and the state
transitions on a fake socket, with a bare WSGI app).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from . import server_path
from .adapters import ADAPTERS, EXTRA_ADAPTERS, SCENARIOS

_TOTAL = re.compile(r"Collected : (\d+)")

#: The child: build the adapter's app and make ``calls`` requests, as inprocess does.
_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from benchmarks.adapters import SCENARIOS, load
import benchmarks.adapters as adapters
from benchmarks.inprocess import time_calls
key, name, calls = sys.argv[2], sys.argv[3], int(sys.argv[4])
scenario = next(s for s in SCENARIOS if s.key == key)
app_for = getattr(adapters, "app_for", None)  # an older checkout (--root) has no compressed apps
app = app_for(load(name), scenario.app_key) if app_for else load(name).make_app(scenario.route_count)
time_calls(app, scenario, 200)  # warm up: lazy imports, caches, the route's chain
time_calls(app, scenario, calls)
"""


def count(valgrind: str, root: Path, scenario: str, framework: str, calls: int) -> int:
    """Instructions of a whole interpreter run making ``calls`` requests."""
    done = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", _CHILD,
         str(root), scenario, framework, str(calls)],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, PYTHONHASHSEED="0"),
    )
    found = _TOTAL.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{framework} {scenario}: valgrind failed: {done.stderr[-800:]}")
    return int(found[1])


def per_call(valgrind: str, root: Path, scenario: str, framework: str, few: int, many: int) -> int:
    return (count(valgrind, root, scenario, framework, few + many) - count(valgrind, root, scenario, framework, few)) // many


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="scenario keys (default all)")
    parser.add_argument("--frameworks", nargs="*", default=["restkit", "falcon"], help="adapters (default restkit falcon)")
    parser.add_argument("--calls", type=int, default=3000, help="calls counted per scenario (default 3000)")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="the checkout whose restkit and benchmarks are counted (default: this one)")
    parser.add_argument("--server-path", action="store_true",
                        help="count one request through restkit's server on a fake socket (benchmarks.server_path)")
    args = parser.parse_args(argv)
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    if args.server_path:
        return server_path.main(["--calls", str(args.calls), "--few", str(min(500, args.calls)), "--root", str(args.root)])
    unknown = [name for name in args.frameworks if name not in ADAPTERS + EXTRA_ADAPTERS]
    if unknown:
        parser.error(f"unknown adapters: {', '.join(unknown)} (known: {', '.join(ADAPTERS)})")
    scenarios = [s for s in SCENARIOS if args.only is None or s.key in args.only]
    print(f"# instructions per call (valgrind callgrind), restkit from {args.root.resolve()}")
    print()
    print("| scenario | " + " | ".join(args.frameworks) + (" | Falcon / restkit |" if _pair(args) else " |"))
    print("|---|" + "---|" * (len(args.frameworks) + _pair(args)))
    for scenario in scenarios:
        counts = {name: per_call(valgrind, args.root, scenario.key, name, 500, args.calls) for name in args.frameworks}
        cells = [f"{counts[name]:,}" for name in args.frameworks]
        if _pair(args):
            cells.append(f"{counts['falcon'] / counts['restkit']:.2f}x")
        print(f"| {scenario.title} | " + " | ".join(cells) + " |", flush=True)
    return 0


def _pair(args: argparse.Namespace) -> int:
    return int("restkit" in args.frameworks and "falcon" in args.frameworks)


if __name__ == "__main__":
    sys.exit(main())
