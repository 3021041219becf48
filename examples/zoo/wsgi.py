"""The zoo for WSGI servers that import an app: gunicorn, waitress, uWSGI, granian.

.. code-block:: sh

    ZOO_DB=postgresql://zoo@db.internal/zoo ZOO_TOKEN=secret \\
        gunicorn --workers 4 --bind 127.0.0.1:8000 'examples.zoo.wsgi:create_app()'

:func:`create_app` reads :class:`examples.zoo.settings.ZooSettings` from the
environment, as ``python -m examples.zoo`` does: ``ZOO_DB`` (default
``zoo.db``), ``ZOO_CREATE=1`` (make a missing SQLite file), ``ZOO_TOKEN``
(without it every write is refused), ``ZOO_READONLY_TOKEN``,
``ZOO_RATE_LIMIT``, ``ZOO_MAX_BODY``, ``ZOO_EMPTY``, ``ZOO_DEADLINE``,
``ZOO_DURABILITY``, ``ZOO_TRUST_PROXY``, ``ZOO_CORS_ORIGINS``,
``ZOO_V1_SUNSET`` and ``ZOO_V1_DEPRECATED``.  Each worker process opens its
own connections on its first request, so ``--preload`` is safe.  Under these
servers a request's deadline counts from when the app first sees it (they do
not say when it arrived; restkit's own server does).
"""

from __future__ import annotations

from collections.abc import Mapping

from .app import ZooApp
from .settings import build_app, read_settings

__all__ = ["create_app"]


def create_app(environ: Mapping[str, str] | None = None) -> ZooApp:
    """The zoo app configured by ``environ`` (default: ``os.environ``).

    Raises:
        restkit.settings.SettingsError: variables missing or malformed (every one listed).
    """
    return build_app(read_settings(environ))
