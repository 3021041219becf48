"""The screencast's settings: ``SCREENCAST_*`` environment variables, overridden by the command line.

Read with :func:`restkit.settings.load_settings`, so that a service
manager or a container sets them the same way as every restkit app
(``SCREENCAST_FPS=60 python -m examples.screencast``); an option given on
the command line wins over its variable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PREFIX", "ScreencastSettings"]

PREFIX = "SCREENCAST_"


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class ScreencastSettings:
    host: str = field(default="127.0.0.1", metadata=_help("address to bind; 0.0.0.0 for the LAN"))
    port: int = field(default=8000, metadata=_help("port"))
    fps: float = field(default=30.0, metadata=_help("grabs per second at most; 0 = as fast as possible"))
    quality: int = field(default=70, metadata=_help("JPEG quality 1-95"))
    width: int | None = field(default=None, metadata=_help("downscale to this width, keeping the aspect ratio"))
    monitor: int = field(default=1, metadata=_help("monitor to capture: 1, 2...; 0 = all"))
    idle: float = field(default=10.0, metadata=_help("seconds capture goes on after the last viewer left"))
    source: str = field(default="screen", metadata=_help("screen, pattern, or another screencast's http(s)://host:port/stream"))
    timeout: float = field(default=30.0,
                           metadata=_help("seconds a viewer that stops reading is kept before it is dropped"))
    certfile: str | None = field(default=None, metadata=_help("serve HTTPS with this PEM certificate (chain)"))
    keyfile: str | None = field(default=None, metadata=_help("the certificate's PEM private key"))
