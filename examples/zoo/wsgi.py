"""The zoo for WSGI servers that import an app: gunicorn, waitress, uWSGI, granian.

    ZOO_DB=postgresql://zoo@db.internal/zoo ZOO_TOKEN=secret \\
        gunicorn --workers 4 --bind 127.0.0.1:8000 'examples.zoo.wsgi:create_app()'

:func:`create_app` reads its settings from the environment: ``ZOO_DB``
(default ``zoo.db``), ``ZOO_TOKEN`` (required: without it every write is
refused), ``ZOO_READONLY_TOKEN``, ``ZOO_RATE_LIMIT`` (default 600),
``ZOO_MAX_BODY`` (default 1 MiB), ``ZOO_EMPTY=1`` (no demo data in a new
database), ``ZOO_DEADLINE`` (seconds, default 5), ``ZOO_DURABILITY``
(``full``, the default, or ``normal``), ``ZOO_TRUST_PROXY`` (the balancers'
addresses, comma-separated, whose ``X-Forwarded-*`` headers are believed),
``ZOO_V1_SUNSET`` (a date: v1 is deprecated and every v1 answer says so) and
``ZOO_V1_DEPRECATED`` (since when; default: the start).  Each worker process opens its own connections on its first
request, so ``--preload`` is safe.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .app import ZooApp, make_app

__all__ = ["create_app"]


def create_app(environ: Mapping[str, str] | None = None) -> ZooApp:
    """The zoo app configured by ``environ`` (default: ``os.environ``)."""
    env = os.environ if environ is None else environ
    return make_app(
        env.get("ZOO_DB", "zoo.db"),
        token=env.get("ZOO_TOKEN") or None,
        readonly_token=env.get("ZOO_READONLY_TOKEN") or None,
        rate_limit=int(env.get("ZOO_RATE_LIMIT", "600")),
        max_body=int(env.get("ZOO_MAX_BODY", str(1 << 20))),
        empty=env.get("ZOO_EMPTY", "") not in ("", "0"),
        deadline=float(env.get("ZOO_DEADLINE", "5")),
        durability=env.get("ZOO_DURABILITY", "full"),
        trust_proxy=env.get("ZOO_TRUST_PROXY", ""),
        v1_sunset=env.get("ZOO_V1_SUNSET") or None,
        v1_deprecated=env.get("ZOO_V1_DEPRECATED") or None,
    )
