"""The zoo's configuration: one dataclass, read from ``ZOO_*`` variables by :mod:`restkit.settings`.

``python -m examples.zoo`` (:mod:`examples.zoo.__main__`) and
``examples.zoo.wsgi:create_app()`` (gunicorn, waitress...) read the same
:class:`ZooSettings`: every field is the variable ``ZOO_`` + its name in upper
case (``ZOO_DB``, ``ZOO_TOKEN``, ``ZOO_RATE_LIMIT``...).  The command line's
options start from those values and win over them.  :func:`build_app` makes the
zoo from settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from restkit.proxy import ProxyHeaders
from restkit.settings import Secret, describe, load_settings

from .app import ZooApp, make_app
from .deprecation import parse_moment

__all__ = ["PREFIX", "ZooSettings", "build_app", "describe_settings", "read_settings"]

PREFIX = "ZOO_"


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class ZooSettings:
    """What the zoo is configured by; each field is the variable ``ZOO_<FIELD>``.

    Raises (when made, from the environment or the command line):
        ValueError: a deadline that is not positive, a bad balancer address, a date that is not one,
            ``v1_deprecated`` without ``v1_sunset`` or after it.
    """

    db: str = field(default="zoo.db", metadata=_help("SQLite file, or postgresql://user@host:port/dbname"))
    create: bool = field(default=False, metadata=_help("make the SQLite file when it does not exist"))
    empty: bool = field(default=False, metadata=_help("a new database gets the animal types only"))
    token: Secret[str] | None = field(default=None, metadata=_help("the Bearer token writes need"))
    readonly_token: Secret[str] | None = field(default=None, metadata=_help("a token that may only read"))
    rate_limit: int = field(default=600, metadata=_help("requests per minute per client; 0: off"))
    max_body: int = field(default=1 << 20, metadata=_help("request body limit in bytes"))
    deadline: float = field(default=5.0, metadata=_help("seconds a request may wait for the database"))
    durability: Literal["full", "normal"] = field(default="full", metadata=_help("full: every commit synced"))
    trust_proxy: list[str] = field(default_factory=list, metadata=_help("balancers whose X-Forwarded-* count"))
    cors_origins: list[str] = field(default_factory=list, metadata=_help("origins whose pages may call the API"))
    v1_sunset: str | None = field(default=None, metadata=_help("deprecate v1: its sunset date"))
    v1_deprecated: str | None = field(default=None, metadata=_help("since when v1 is deprecated"))
    host: str = field(default="127.0.0.1", metadata=_help("address to bind (command line only)"))
    port: int = field(default=8000, metadata=_help("port (command line only)"))

    def __post_init__(self) -> None:
        if self.deadline <= 0:
            raise ValueError("--deadline (ZOO_DEADLINE) must be > 0 seconds")
        if self.trust_proxy:
            try:
                ProxyHeaders(self.trust_proxy)
            except ValueError as exc:
                raise ValueError(f"--trust-proxy (ZOO_TRUST_PROXY): {exc}") from None
        if self.v1_deprecated and not self.v1_sunset:
            raise ValueError("--v1-deprecated (ZOO_V1_DEPRECATED) needs --v1-sunset (ZOO_V1_SUNSET)")
        for name, value in (("--v1-sunset (ZOO_V1_SUNSET)", self.v1_sunset),
                            ("--v1-deprecated (ZOO_V1_DEPRECATED)", self.v1_deprecated)):
            if value:
                try:
                    parse_moment(value)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        if self.v1_sunset and self.v1_deprecated and parse_moment(self.v1_sunset) < parse_moment(self.v1_deprecated):
            raise ValueError("--v1-sunset is before --v1-deprecated")


def read_settings(environ: Mapping[str, str] | None = None) -> ZooSettings:
    """The settings from ``environ`` (default: ``os.environ``).

    Raises:
        restkit.settings.SettingsError: variables missing or malformed (all of them listed).
        ValueError: values that do not fit together (see :class:`ZooSettings`).
    """
    return load_settings(ZooSettings, PREFIX, environ)


def describe_settings() -> str:
    """The variables, their types, defaults and help: for ``--help``."""
    return describe(ZooSettings, PREFIX)


def build_app(settings: ZooSettings, *, token: str | None = None) -> ZooApp:
    """The zoo configured by ``settings``; ``token`` (one made up by the command line) wins over theirs."""
    return make_app(
        settings.db,
        token=token or (settings.token.reveal() if settings.token else None),
        readonly_token=settings.readonly_token.reveal() if settings.readonly_token else None,
        rate_limit=settings.rate_limit,
        max_body=settings.max_body,
        empty=settings.empty,
        create=settings.create,
        deadline=settings.deadline,
        durability=settings.durability,
        cors_origins=settings.cors_origins,
        trust_proxy=settings.trust_proxy,
        v1_sunset=settings.v1_sunset,
        v1_deprecated=settings.v1_deprecated,
    )
