"""restkit with :class:`restkit.metrics.Metrics` installed: the same scenarios, counted (``--metrics``)."""

from __future__ import annotations

from restkit import App
from restkit.metrics import Metrics

from .restkit import make_app as make_plain_app


def make_app(route_count: int = 10, compressed: bool = False) -> App:
    app = make_plain_app(route_count, compressed)
    app.use(Metrics())
    return app
