"""``python -m restkit package.module:app``: serve a WSGI app."""

from .cli import main

raise SystemExit(main())
