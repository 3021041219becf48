"""The screencast routes: a page, the live stream, a snapshot and the counters."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from restkit import App, Request, Response, ServiceUnavailable
from restkit.validation import Field

from .broadcaster import BOUNDARY, Broadcaster, first_part
from .capture import CaptureError

__all__ = ["make_app"]

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>screencast</title>
<style>
  body {{ margin: 0; background: #1e1e1e; color: #ddd; font: 14px system-ui, sans-serif; }}
  header {{ padding: 6px 12px; }}
  img {{ display: block; max-width: 100%; height: auto; margin: 0 auto; }}
</style>
</head>
<body>
<header>screencast · <span id="fps">–</span> · <span id="viewers">–</span> watching</header>
<img id="screen" alt="the shared screen" src="{stream}">
<script>
  async function refresh() {{
    try {{
      const stats = await (await fetch({stats}, {{cache: "no-store"}})).json();
      // stats.fps counts new frames: an unchanged screen is not sent again, so
      // a still screen has (almost) none, which is no fault: say "still".
      document.getElementById("fps").textContent =
        stats.capturing && stats.fps < 1 ? "still" : stats.fps.toFixed(1) + " fps";
      document.getElementById("viewers").textContent = stats.viewers;
    }} catch (error) {{ /* the server restarted or went away: try again later */ }}
  }}
  refresh();
  setInterval(refresh, 1000);
</script>
</body>
</html>
"""

NO_STORE = {"Cache-Control": "no-store"}
MAX_FPS = 240.0
MAX_WIDTH = 7680


@dataclass(frozen=True)
class StreamQuery:
    """What one viewer of ``/stream`` may ask for; the others get the server's settings.

    Viewers asking for the same width and quality share one encoding of
    each frame; ``fps`` only thins out what a viewer is sent.
    """

    fps: Annotated[
        float | None, Field(gt=0, le=MAX_FPS, description="frames a second at most (never more than the capture's)")
    ] = None
    width: Annotated[int | None, Field(ge=16, le=MAX_WIDTH, description="downscale to this width (never up)")] = None
    quality: Annotated[int | None, Field(ge=1, le=95, description="JPEG quality")] = None


def make_app(broadcaster: Broadcaster) -> App:
    """The screencast app, serving what ``broadcaster`` captures."""
    app = App()
    # A graceful stop ends every viewer's stream properly (the last chunk is
    # sent) instead of waiting for the grace period to cut them.
    app.on_shutdown(broadcaster.close)

    @app.get("/", produces="text/html", query=StreamQuery)
    def index(request: Request, query: StreamQuery) -> Response:
        # The page's own choices go on to its stream: /?width=640&fps=10 on a phone.
        choices: dict[str, Any] = {name: int(value) if isinstance(value, float) and value.is_integer() else value
                   for name, value in vars(query).items() if value is not None}
        # Escaped for where each lands: an HTML attribute, and a JavaScript string in <script>.
        stats = json.dumps(request.url_for("stats")).replace("<", "\\u003c")
        page = PAGE.format(stream=html.escape(request.url_for("stream", **choices)), stats=stats)
        return Response.html(page, headers=NO_STORE)

    @app.get("/stream", produces=None, query=StreamQuery)
    def stream(request: Request, query: StreamQuery) -> Response:
        frames = broadcaster.frames(fps=query.fps, width=query.width, quality=query.quality)

        def parts() -> Iterator[bytes]:
            try:
                yield first_part()
                for frame in frames:
                    yield frame.part  # framed once, shared by every viewer of this variant
            finally:
                frames.close()  # the viewer leaves as soon as its client does

        return Response(parts(), headers=NO_STORE, content_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}")

    @app.get("/snapshot.jpg", produces=None)
    def snapshot(request: Request) -> Response:
        try:
            frame = broadcaster.snapshot()
        except CaptureError as exc:
            raise ServiceUnavailable(f"cannot capture the screen: {exc}") from None
        return Response(frame.jpeg, headers=NO_STORE, content_type="image/jpeg")

    @app.get("/stats")
    def stats(request: Request) -> dict[str, Any]:
        return broadcaster.stats()

    return app
