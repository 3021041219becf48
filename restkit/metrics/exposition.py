"""The series restkit reports, and their text: Prometheus 0.0.4 or OpenMetrics 1.0.0.

Samples travel as :data:`Samples`, a dict from ``(sample name, labels)`` to
a number, ``labels`` a tuple of ``(name, value)`` pairs in a fixed order.
A histogram is its ``_bucket`` (with ``le``), ``_count`` and ``_sum``
samples; a counter is its ``_total`` sample.  :data:`FAMILIES` says, once,
what each family is: its type, its help text, how processes combine it.

Formats (https://prometheus.io/docs/instrumenting/exposition_formats/ and
the OpenMetrics 1.0 specification): a family is ``# HELP``, ``# TYPE``,
then its samples, one a line, ``name{label="value",...} value``.  Label
values escape ``\\``, ``"`` and a line feed; help text ``\\`` and a line
feed.  In 0.0.4 a counter's TYPE line names the ``_total`` sample; in
OpenMetrics it names the family without it, and the text ends with
``# EOF``.  Histogram buckets come in increasing ``le``, ``+Inf`` last,
then ``_count`` and ``_sum``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from ..httprules import parse_qvalues

__all__ = [
    "FAMILIES", "Family", "Labels", "OPENMETRICS_TYPE", "Samples", "TEXT_TYPE", "format_bound", "render",
    "wants_openmetrics",
]

Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]

TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass(frozen=True)
class Family:
    """A metric family: its name (no ``_total``), type, help, and how several processes combine it.

    ``combine`` is ``"sum"`` (counters always; gauges summed over live
    processes) or ``"min"`` (the earliest of the live processes' values).
    """

    name: str
    type: str  # "counter", "gauge", "histogram" or "summary" (a count and a sum, no quantiles)
    help: str
    combine: str = "sum"

    def sample_names(self) -> tuple[str, ...]:
        if self.type == "counter":
            return (self.name + "_total",)
        if self.type == "histogram":
            return (self.name + "_bucket", self.name + "_count", self.name + "_sum")
        if self.type == "summary":
            return (self.name + "_count", self.name + "_sum")
        return (self.name,)


FAMILIES: tuple[Family, ...] = (
    Family("restkit_http_requests", "counter",
           "HTTP requests answered by the app, by method, route template and status."),
    Family("restkit_http_request_duration_seconds", "histogram",
           "Seconds from routing to the response the app returned, by method and route template."),
    Family("restkit_http_response_size_bytes", "summary",
           "Body bytes of responses whose length the app knew (not streams), by method and route template."),
    Family("restkit_http_requests_in_flight", "gauge", "Requests the app is answering now."),
    Family("restkit_server_connections", "gauge", "Open connections of restkit's server, by state."),
    Family("restkit_server_connections_accepted", "counter", "Connections restkit's server accepted."),
    Family("restkit_server_worker_threads_busy", "gauge", "Worker threads running the app now (streams included)."),
    Family("restkit_server_worker_threads", "gauge", "Worker threads restkit's server may run (its threads option)."),
    Family("restkit_server_streams_open", "gauge", "Responses of unknown length being sent."),
    Family("restkit_server_accepting", "gauge",
           "1 while restkit's server accepts connections, 0 while accepting is paused (summed over processes)."),
    Family("restkit_server_accept_pauses", "counter",
           "Times accepting paused because the process ran out of descriptors."),
    Family("restkit_server_refused_requests", "counter",
           "Requests restkit's server answered itself without the app (parse errors, 408, 413...), by status."),
    Family("restkit_server_tls_handshake_failures", "counter", "Connections that failed their TLS handshake."),
    Family("process_cpu_seconds", "counter", "User and system CPU seconds of the serving processes."),
    Family("process_resident_memory_bytes", "gauge", "Resident memory of the serving processes, in bytes."),
    Family("process_open_fds", "gauge", "Open file descriptors of the serving processes."),
    Family("process_max_fds", "gauge", "The descriptor limit of the serving processes (summed over processes)."),
    Family("process_start_time_seconds", "gauge",
           "Start time of the oldest live serving process, in seconds since the epoch.", combine="min"),
    Family("restkit_processes", "gauge", "Processes whose figures these are (workers reporting)."),
)

_BY_SAMPLE = {sample: family for family in FAMILIES for sample in family.sample_names()}


def family_of(sample: str) -> Family:
    """The family a sample name belongs to."""
    return _BY_SAMPLE[sample]


def format_bound(bound: float) -> str:
    """A bucket bound as its ``le`` label: ``0.005``, ``1.0``, ``+Inf``."""
    return "+Inf" if bound == math.inf else repr(float(bound))


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if value != value:
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample_line(name: str, labels: Labels, value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}"
    inner = ",".join(f'{key}="{_escape_label(text)}"' for key, text in labels)
    return f"{name}{{{inner}}} {_number(value)}"


def _bucket_order(item: tuple[tuple[str, Labels], float]) -> tuple[Labels, int, float]:
    """Histogram samples grouped by their labels (``le`` aside): buckets by bound, then _count, then _sum."""
    (name, labels), _ = item
    rest = tuple(pair for pair in labels if pair[0] != "le")
    if name.endswith("_bucket"):
        bound = dict(labels)["le"]
        return rest, 0, math.inf if bound == "+Inf" else float(bound)
    return rest, 1 if name.endswith("_count") else 2, 0.0


def render(samples: Samples, *, openmetrics: bool = False) -> str:
    """The exposition text of ``samples``, families in :data:`FAMILIES` order; empty families left out."""
    grouped: dict[str, list[tuple[tuple[str, Labels], float]]] = {}
    for key, value in samples.items():
        grouped.setdefault(family_of(key[0]).name, []).append((key, value))
    lines: list[str] = []
    for family in FAMILIES:
        found = grouped.get(family.name)
        if not found:
            continue
        typed = family.name + "_total" if family.type == "counter" and not openmetrics else family.name
        help_text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {typed} {help_text}")
        lines.append(f"# TYPE {typed} {family.type}")
        found.sort(key=_bucket_order if family.type in ("histogram", "summary") else _plain_order)
        lines.extend(_sample_line(name, labels, value) for (name, labels), value in found)
    if openmetrics:
        lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _plain_order(item: tuple[tuple[str, Labels], float]) -> Labels:
    return item[0][1]


def wants_openmetrics(accept: str) -> bool:
    """Whether an ``Accept`` header prefers OpenMetrics 1.0 to the 0.0.4 text (Prometheus asks for both, weighted).

    OpenMetrics is chosen when it is accepted with a weight at least that of
    ``text/plain`` (or ``*/*``); an OpenMetrics range naming another version
    than 1.0.0 does not count.
    """
    if "openmetrics" not in accept:
        return False
    best_open, best_text = 0.0, 0.0
    for item in accept.split(","):
        media = item.partition(";")[0].strip().lower()
        weighted = parse_qvalues(item)
        q = weighted[0][1] if weighted else 0.0
        if media == "application/openmetrics-text":
            version = _parameter(item, "version")
            if version in (None, "1.0.0"):
                best_open = max(best_open, q)
        elif media in ("text/plain", "*/*", "text/*"):
            best_text = max(best_text, q)
    return best_open > 0 and best_open >= best_text


def _parameter(item: str, name: str) -> str | None:
    for param in item.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"')
    return None


def merge_into(total: Samples, more: Iterable[tuple[tuple[str, Labels], float]], combine: dict[str, str]) -> None:
    """Add ``more`` into ``total`` (``combine[sample name] == "min"``: keep the smaller)."""
    for key, value in more:
        had = total.get(key)
        if had is None:
            total[key] = value
        elif combine.get(key[0]) == "min":
            total[key] = min(had, value)
        else:
            total[key] = had + value


#: How each sample name combines across processes ("sum" unless listed).
COMBINE = {sample: family.combine for family in FAMILIES for sample in family.sample_names() if family.combine != "sum"}
