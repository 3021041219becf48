"""Prometheus metrics for restkit apps: ``app.use(Metrics())`` and scrape ``GET /metrics``.

One module a job:

=====================  ========================================================
:mod:`.collector`      :class:`Metrics`: the hooks that count, the scrape route
:mod:`.exposition`     the series and their text (Prometheus 0.0.4, OpenMetrics)
:mod:`.shared`         several processes: a file each in a shared directory
:mod:`.process`        CPU, memory, descriptors, start time of this process
=====================  ========================================================

restkit's server's own figures are counted by :mod:`restkit.server.stats`.
"""

from .collector import DEFAULT_BUCKETS, UNMATCHED, Metrics

__all__ = ["DEFAULT_BUCKETS", "Metrics", "UNMATCHED"]
