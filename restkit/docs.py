"""``/docs``: a self-contained HTML page that reads ``/openapi.json``.

The page (HTML, CSS and JavaScript) is ``docs.html`` next to this module.
No CDN and no external assets, so it works offline.  It lists the
operations grouped by tag (native ``<details>`` elements expand them), shows
parameters, request and response schemas, and sends real requests ("try it
out").  Every piece of text from the document is inserted with
``textContent``, never as HTML.

The fragment automates it, for links and for tests:
``/docs#op=list_zoos&p.limit=5&send=1`` expands ``list_zoos``, fills the
``limit`` parameter and sends the request.
"""

from __future__ import annotations

import html
import json
import re

__all__ = ["docs_page"]

_PAGE_FILE = "docs.html"  # package data, shipped by pyproject.toml's package-data
_page: str | None = None


def _template() -> str:
    """The page with its placeholders, read from the package once."""
    global _page
    if _page is None:
        from importlib.resources import files

        _page = files(__package__ or "restkit").joinpath(_PAGE_FILE).read_text(encoding="utf-8")
    return _page


_PLACEHOLDER = re.compile(r"__(?:TITLE|SPEC_URL|BASE)__")


def docs_page(title: str, spec_url: str, base: str = "") -> str:
    """The HTML of the docs page for the document at ``spec_url``."""

    def js(value: str) -> str:
        return json.dumps(value).replace("<", "\\u003c")

    values = {"__TITLE__": html.escape(title), "__SPEC_URL__": js(spec_url), "__BASE__": js(base)}
    # One pass, so a title that contains "__BASE__" stays text.
    return _PLACEHOLDER.sub(lambda found: values[found[0]], _template())
