"""``python -m examples.screencast [--host H] [--port P] [--fps 30] [--quality 70] [--width W]
[--monitor 1] [--idle 10] [--timeout 30] [--source screen|pattern|http://host:port/stream]
[--certfile cert.pem --keyfile key.pem]``; each option's default comes from ``SCREENCAST_<OPTION>``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from restkit import serve
from restkit.settings import SettingsError, describe, load_settings

from .settings import PREFIX, ScreencastSettings

if TYPE_CHECKING:
    from .capture import Source


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The options: the command line over the ``SCREENCAST_*`` variables over the defaults."""
    try:
        env = load_settings(ScreencastSettings, prefix=PREFIX)
    except SettingsError as exc:
        print(f"screencast: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    parser = argparse.ArgumentParser(
        prog="python -m examples.screencast", description="Share this screen with any number of browsers.",
        epilog="Every option can also be set in the environment:\n\n" + describe(ScreencastSettings, PREFIX),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default=env.host, help="address to bind (default 127.0.0.1; 0.0.0.0 for the LAN)")
    parser.add_argument("--port", type=int, default=env.port, help="port (default 8000)")
    parser.add_argument("--fps", type=float, default=env.fps,
                        help="grabs per second at most; 0 = as fast as possible (default 30)")
    parser.add_argument("--quality", type=int, default=env.quality, help="JPEG quality 1-95 (default 70)")
    parser.add_argument("--width", type=int, default=env.width,
                        help="downscale to this width, keeping the aspect ratio")
    parser.add_argument("--monitor", type=int, default=env.monitor,
                        help="monitor to capture: 1, 2...; 0 = all (default 1)")
    parser.add_argument("--idle", type=float, default=env.idle,
                        help="seconds capture goes on after the last viewer left (default 10)")
    parser.add_argument("--timeout", type=float, default=env.timeout,
                        help="seconds a viewer that stops reading is kept before it is dropped (default 30)")
    parser.add_argument("--source", default=env.source, metavar="screen|pattern|URL",
                        help="the screen, a moving test picture, or another screencast's http(s)://host:port/stream"
                             " to relay")
    parser.add_argument("--certfile", default=env.certfile, help="serve HTTPS with this PEM certificate (chain)")
    parser.add_argument("--keyfile", default=env.keyfile, help="the certificate's PEM private key")
    args = parser.parse_args(argv)
    if (args.certfile is None) != (args.keyfile is None):
        parser.error("--certfile and --keyfile go together")
    if args.source not in ("screen", "pattern") and not args.source.startswith(("http://", "https://")):
        parser.error("--source is screen, pattern or an http(s):// URL of another screencast's /stream")
    if args.fps < 0 or args.idle < 0 or not 1 <= args.quality <= 100 or (args.width is not None and args.width < 1):
        parser.error("--fps and --idle must be >= 0, --quality 1-100, --width positive")
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:  # imported after the options, so --help works without them
        from .app import make_app
        from .broadcaster import Broadcaster
        from .capture import NoScreenError, PatternSource, ScreenSource
        from .relay import RelaySource
    except ImportError as exc:
        print(f"screencast: needs Pillow and mss, not installed here ({exc}): pip install '.[examples]'",
              file=sys.stderr)
        return 2

    source: Source
    if args.source == "screen":
        source = ScreenSource(args.monitor)
    elif args.source == "pattern":
        source = PatternSource()
    else:
        source = RelaySource(args.source)  # one upstream connection, any number of viewers here
    try:  # fail now, with a line that says what to do, rather than on the first viewer
        source.open().close()
    except NoScreenError as exc:
        print("screencast:", " ".join(str(exc).split()), file=sys.stderr)  # one line, whatever mss said
        return 2
    broadcaster = Broadcaster(source, fps=args.fps, quality=args.quality, width=args.width, idle=args.idle)
    try:
        # timeout: a viewer that stops reading holds one frame in the server's
        # outbox, and is cut once it has taken nothing for this long.
        serve(make_app(broadcaster), host=args.host, port=args.port, certfile=args.certfile, keyfile=args.keyfile,
              timeout=args.timeout)
    except OSError as exc:
        print(f"screencast: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        broadcaster.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
