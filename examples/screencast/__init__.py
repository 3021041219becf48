"""Share a screen with any number of browsers from one capture thread.

``python -m examples.screencast --source pattern`` runs it anywhere;
see README.md in this directory.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import make_app
    from .broadcaster import Broadcaster
    from .capture import PatternSource, ScreenSource

__all__ = ["Broadcaster", "PatternSource", "ScreenSource", "make_app"]


def __getattr__(name: str) -> Any:
    # Imported on use: they need Pillow, and `python -m examples.screencast`
    # must be able to say so in one line (or show --help) without it.
    if name == "make_app":
        from .app import make_app

        return make_app
    if name == "Broadcaster":
        from .broadcaster import Broadcaster

        return Broadcaster
    if name in __all__:
        from . import capture

        return getattr(capture, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
