"""Share a screen with any number of browsers from one capture thread.

``python -m examples.screencast --source pattern`` runs it anywhere;
see README.md in this directory.
"""

from .app import make_app
from .capture import Broadcaster, PatternSource, ScreenSource

__all__ = ["Broadcaster", "PatternSource", "ScreenSource", "make_app"]
