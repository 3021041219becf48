"""The zoo: a REST API on SQLite that follows the REST conventions of ``shared/seeds``.

Run it with ``python -m examples.zoo``; build it with :func:`examples.zoo.app.make_app`.
"""

from .app import make_app

__all__ = ["make_app"]
