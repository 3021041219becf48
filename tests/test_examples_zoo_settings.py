"""The zoo's settings: one dataclass read from ``ZOO_*`` by the command line and by ``wsgi.create_app``."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from examples.zoo.__main__ import parse_args
from examples.zoo.settings import ZooSettings, read_settings
from examples.zoo.store import Store
from examples.zoo.wsgi import create_app
from restkit.settings import SettingsError
from tests.conftest import make_client
from tests.test_examples_zoo import send_json

README = (Path(__file__).resolve().parent.parent / "examples" / "zoo" / "README.md").read_text(encoding="utf-8")


def test_the_environment_is_read_into_one_dataclass() -> None:
    settings = read_settings({"ZOO_DB": "x.db", "ZOO_CREATE": "1", "ZOO_TOKEN": "s3cret", "ZOO_RATE_LIMIT": "0",
                              "ZOO_DEADLINE": "2.5", "ZOO_TRUST_PROXY": "127.0.0.1, 10.0.0.0/8",
                              "ZOO_CORS_ORIGINS": "http://a.example", "ZOO_DURABILITY": "normal"})
    assert (settings.db, settings.create, settings.rate_limit, settings.deadline) == ("x.db", True, 0, 2.5)
    assert settings.trust_proxy == ["127.0.0.1", "10.0.0.0/8"] and settings.cors_origins == ["http://a.example"]
    assert settings.token is not None and settings.token.reveal() == "s3cret" and "s3cret" not in repr(settings)
    assert read_settings({}) == ZooSettings()


@pytest.mark.parametrize("environ, problem", [
    ({"ZOO_DEADLINE": "soon"}, "ZOO_DEADLINE"),
    ({"ZOO_DURABILITY": "sometimes"}, "ZOO_DURABILITY"),
    ({"ZOO_DEADLINE": "0"}, "--deadline (ZOO_DEADLINE) must be > 0"),
    ({"ZOO_V1_DEPRECATED": "2026-01-01"}, "needs --v1-sunset"),
    ({"ZOO_TRUST_PROXY": "10.0.0.1/8"}, "ZOO_TRUST_PROXY"),
], ids=["not-a-number", "not-a-choice", "deadline-zero", "deprecated-alone", "bad-network"])
def test_bad_settings_are_refused_naming_the_variable(environ: dict[str, str], problem: str) -> None:
    with pytest.raises((SettingsError, ValueError), match=re.escape(problem)):
        read_settings(environ)


def test_command_line_options_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_DB", "from-env.db")
    monkeypatch.setenv("ZOO_RATE_LIMIT", "7")
    monkeypatch.setenv("ZOO_TOKEN", "env-token")
    settings = parse_args(["--db", "from-cli.db", "--trust-proxy", "127.0.0.1,10.0.0.0/8"]).settings
    assert (settings.db, settings.rate_limit, settings.trust_proxy) == ("from-cli.db", 7, ["127.0.0.1", "10.0.0.0/8"])
    assert settings.token.reveal() == "env-token"
    assert parse_args(["--token", "cli-token"]).settings.token.reveal() == "cli-token"


def test_wsgi_create_app_needs_create_for_a_new_file(tmp_path: Path) -> None:
    db = tmp_path / "zoo.db"
    with pytest.raises(FileNotFoundError, match="--create"):
        create_app({"ZOO_DB": str(db), "ZOO_TOKEN": "t"})
    app = create_app({"ZOO_DB": str(db), "ZOO_CREATE": "1", "ZOO_TOKEN": "t", "ZOO_RATE_LIMIT": "0"})
    try:
        client = make_client(app)
        assert send_json(client, "POST", "/v1/zoos", {"name": "n", "city": "c"}, headers={"Authorization": "Bearer t"}
                         ).status_int == 201
    finally:
        app.close()


def test_the_readmes_auto_vacuum_conversion_runs_as_written(tmp_path: Path) -> None:
    """``sqlite3 zoo.db '...'`` from the README, on a database made without auto_vacuum."""
    (sql,) = re.findall(r"`sqlite3\s+zoo\.db '([^']+)'`", README)
    db = tmp_path / "zoo.db"
    Store(str(db), create=True).close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA auto_vacuum = NONE")
        conn.execute("VACUUM")
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (0,)
    with sqlite3.connect(db) as conn:
        conn.executescript(sql)
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # INCREMENTAL
    Store(str(db)).close()  # the zoo opens it as before
