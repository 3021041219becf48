"""Calls per second through each framework's WSGI callable, no server involved.

Run ``python -m benchmarks.inprocess`` (``--help`` for options).  For each
scenario and framework a prebuilt environ is copied per call (frameworks
cache parsed data in the environ, so reusing one would flatter them), given
a fresh ``wsgi.input``, passed to ``app(environ, start_response)``, and the
body is consumed and closed.  One repeat times ``N`` such calls; the
frameworks take turns inside each repeat, so a slow moment of the machine
hits them all alike.  The table shows the median calls/s over the repeats,
the spread ((max - min) / median), and restkit's ratio to each peer (the
median of the ratios within each repeat).

Then the import time of restkit and Bottle (``python -X importtime``).

``--metrics`` compares restkit with and without :class:`restkit.metrics.Metrics`
(the ``restkit_metrics`` adapter) instead, and prints the ratio per scenario.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any

from .adapters import ADAPTERS, SCENARIOS, Scenario, apps_for, environ_for, falcon_is_pure_python, framework_version, load

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    return None


#: What time_calls() reads: wall time, or with --cpu-time the CPU time of this
#: thread, which other processes on a shared machine do not inflate.
clock: Callable[[], float] = time.perf_counter


def time_calls(app: WSGIApp, scenario: Scenario, calls: int) -> float:
    """Seconds taken by ``calls`` requests of ``scenario`` to ``app`` (by :data:`clock`)."""
    base = environ_for(scenario)
    body = scenario.body
    start_response = _start_response
    bytes_io = io.BytesIO
    now = clock
    started = now()
    for _ in range(calls):
        environ = base.copy()
        environ["wsgi.input"] = bytes_io(body)
        result = app(environ, start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return now() - started


def build_apps(names: Iterable[str]) -> tuple[dict[str, dict[tuple[int, bool], WSGIApp]], dict[str, str]]:
    """The apps of each adapter that imports, by :attr:`Scenario.app_key`; and why the others were skipped."""
    apps: dict[str, dict[tuple[int, bool], WSGIApp]] = {}
    skipped: dict[str, str] = {}
    for name in names:
        try:
            module = load(name)
        except ImportError as exc:
            skipped[name] = f"not installed ({exc}); pip install '.[bench]'"
            continue
        if name == "falcon" and not falcon_is_pure_python():
            skipped[name] = "could not load Falcon as pure Python"
            continue
        apps[name] = apps_for(module)
    return apps, skipped


def calibrate(app: WSGIApp, scenario: Scenario, target: float) -> int:
    """Calls that take about ``target`` seconds."""
    calls = 100
    while True:
        elapsed = time_calls(app, scenario, calls)
        if elapsed >= target / 4 or calls >= 10_000_000:
            return max(100, int(calls * target / max(elapsed, 1e-9)))
        calls *= 4


def measure(
    apps: dict[str, dict[tuple[int, bool], WSGIApp]], scenarios: list[Scenario], repeats: int, target: float, quick: bool
) -> dict[str, dict[str, list[float]]]:
    """calls/s of every (scenario, framework), one value per repeat.

    Every repeat runs every scenario on every framework, so a slow moment of
    the machine (another process, a frequency change) lands on one repeat
    of everything rather than on one framework or one scenario.
    """
    plan: dict[tuple[str, str], int] = {}
    for scenario in scenarios:
        for name, by_count in apps.items():
            app = by_count[scenario.app_key]
            time_calls(app, scenario, 50)  # warm up: route tables, lazy imports, caches
            plan[scenario.key, name] = 200 if quick else calibrate(app, scenario, target)
    results: dict[str, dict[str, list[float]]] = {s.key: {name: [] for name in apps} for s in scenarios}
    for repeat in range(repeats):
        for scenario in scenarios:
            for name, by_count in apps.items():
                calls = plan[scenario.key, name]
                gc.collect()
                elapsed = time_calls(by_count[scenario.app_key], scenario, calls)
                results[scenario.key][name].append(calls / elapsed)
        print(f"  repeat {repeat + 1}/{repeats} done", file=sys.stderr, flush=True)
    return results


def _k(rate: float) -> str:
    return f"{rate / 1000:,.0f}k" if rate >= 10_000 else f"{rate / 1000:,.1f}k"


def paired_ratio(ours: list[float], theirs: list[float]) -> float:
    """The median of the ratios within each repeat.

    The frameworks take turns inside a repeat, so a slow moment of a shared
    machine hits both sides of one ratio; a ratio of the medians would mix
    moments.
    """
    return statistics.median(a / b for a, b in zip(ours, theirs))


def print_table(results: dict[str, dict[str, list[float]]], names: list[str]) -> None:
    """Markdown tables: median calls/s (spread), then restkit / each peer."""
    titles = {s.key: s.title for s in SCENARIOS}
    header = [framework_label(n) for n in names]
    print("| scenario | " + " | ".join(header) + " |")
    print("|---|" + "---|" * len(names))
    for key, rates in results.items():
        cells = []
        for name in names:
            values = rates[name]
            median = statistics.median(values)
            spread = (max(values) - min(values)) / median * 100
            cells.append(f"{_k(median)} ±{spread:.0f}%")
        print(f"| {titles[key]} | " + " | ".join(cells) + " |")
    peers = [n for n in names if n != "restkit"]
    if "restkit" not in names:
        return
    print()
    print("| scenario | " + " | ".join(f"restkit / {framework_label(n)}" for n in peers) + " |")
    print("|---|" + "---|" * len(peers))
    for key, rates in results.items():
        cells = [f"{paired_ratio(rates['restkit'], rates[n]):.2f}x" for n in peers]
        print(f"| {titles[key]} | " + " | ".join(cells) + " |")
    if "routes_10" in results and "routes_1000" in results:
        print()
        for name in names:
            ten = statistics.median(results["routes_10"][name])
            thousand = statistics.median(results["routes_1000"][name])
            print(f"route scaling {framework_label(name)}: 1,000 routes / 10 routes = {thousand / ten:.2f}")


def framework_label(name: str) -> str:
    version = framework_version(name)
    label = {"bare": "bare WSGI", "falcon": "Falcon (pure Python)"}.get(name, name.capitalize())
    if name in ("restkit", "restkit_metrics"):
        return "restkit" if name == "restkit" else "restkit + Metrics"
    return f"{label} {version}".strip() if name != "bare" else label


def import_time(module: str, runs: int) -> tuple[float, float] | None:
    """Median and minimum cumulative import time of ``module`` in ms over ``runs`` fresh interpreters.

    Measured as ``python -X importtime -c "import <module>"`` reports it, with
    bytecode caches warm (in a temporary ``PYTHONPYCACHEPREFIX``, so the
    working tree gets no ``__pycache__``), as an installed package runs.
    """
    pattern = re.compile(rf"^import time:\s+\d+\s+\|\s+(\d+)\s+\|\s*{re.escape(module)}\s*$", re.M)
    times = []
    with tempfile.TemporaryDirectory(prefix="restkit-bench-pycache-") as cache:
        env = dict(os.environ, PYTHONPYCACHEPREFIX=cache)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))
        for run in range(runs + 1):  # the first run writes the bytecode cache
            done = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", f"import {module}"],
                capture_output=True, text=True, env=env, timeout=60,
            )
            found = pattern.search(done.stderr)
            if done.returncode != 0 or not found:
                return None
            if run:
                times.append(int(found[1]) / 1000)
    return statistics.median(times), min(times)


def print_targets(
    results: dict[str, dict[str, list[float]]], restkit_import: tuple[float, float] | None, quick: bool = False
) -> None:
    """The targets of issues 5 and 11 that this benchmark measures, met or not."""
    print("targets (--quick: 200 calls once, not a measurement):" if quick else "targets:")
    if "restkit" in next(iter(results.values()), {}) and "falcon" in next(iter(results.values()), {}):
        ratios = {k: paired_ratio(r["restkit"], r["falcon"]) for k, r in results.items()}
        worst = min(ratios, key=ratios.__getitem__)
        ok = ratios[worst] >= 1.5
        print(f"  restkit >= 1.5x Falcon (pure Python) in every scenario: {'met' if ok else 'NOT met'} "
              f"(lowest {ratios[worst]:.2f}x, {worst})")
    if "routes_10" in results and "routes_1000" in results and "restkit" in results["routes_10"]:
        scaling = statistics.median(results["routes_1000"]["restkit"]) / statistics.median(results["routes_10"]["restkit"])
        print(f"  1,000 routes >= 0.9x 10 routes: {'met' if scaling >= 0.9 else 'NOT met'} ({scaling:.2f})")
    if restkit_import is not None:
        median, least = restkit_import
        print(f"  import restkit < 15 ms: {'met' if median < 15 else 'NOT met'} (median {median:.1f} ms, min {least:.1f} ms)")


def print_metrics_overhead(results: dict[str, dict[str, list[float]]], quick: bool = False) -> None:
    """restkit + Metrics / restkit per scenario, and the target (within 10%)."""
    ratios = {key: paired_ratio(rates["restkit_metrics"], rates["restkit"]) for key, rates in results.items()}
    for key, ratio in ratios.items():
        print(f"metrics on / off, {key}: {ratio:.2f}")
    worst = min(ratios, key=ratios.__getitem__)
    verdict = "met" if ratios[worst] >= 0.9 else "NOT met"
    print(f"{'(--quick: not a measurement) ' if quick else ''}target: metrics on >= 0.9x off in every scenario: "
          f"{verdict} (lowest {ratios[worst]:.2f}, {worst}; median {statistics.median(ratios.values()):.2f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.inprocess", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed repeats per scenario (default 9)")
    parser.add_argument("--seconds", type=float, default=0.1, help="length of one repeat per framework (default 0.1)")
    parser.add_argument("--quick", action="store_true", help="1 repeat of 200 calls: checks it works, times nothing")
    parser.add_argument("--only", nargs="*", default=None, help="scenario keys to run (default all)")
    parser.add_argument("--frameworks", nargs="*", default=list(ADAPTERS), help="adapters to run")
    parser.add_argument("--metrics", action="store_true",
                        help="restkit with Metrics installed against restkit without (the metrics overhead)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time by this thread's CPU time, not wall time (for a machine shared with other work)")
    args = parser.parse_args(argv)
    global clock
    if args.cpu_time:
        clock = time.thread_time
    repeats = 1 if args.quick else args.repeats
    if args.metrics:
        args.frameworks = ["restkit", "restkit_metrics"]
    apps, skipped = build_apps(args.frameworks)
    names = list(apps)
    print(f"# restkit in-process benchmark: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"median of {repeats} repeat(s){', CPU time' if args.cpu_time else ''}")
    for name, why in skipped.items():
        print(f"(skipped {name}: {why})")
    scenarios = [s for s in SCENARIOS if args.only is None or s.key in args.only]
    results = measure(apps, scenarios, repeats, args.seconds, args.quick)
    print()
    print_table(results, names)
    print()
    if args.metrics:
        print_metrics_overhead(results, args.quick)
        return 0
    runs = 1 if args.quick else 9
    imports = {}
    for module in ("restkit", "bottle"):
        imports[module] = found = import_time(module, runs)
        print(f"import {module}: " + (
            "not installed" if found is None
            else f"{found[0]:.1f} ms (median of {runs}, min {found[1]:.1f} ms; python -X importtime, cumulative)"
        ))
    print()
    print_targets(results, imports["restkit"], args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
