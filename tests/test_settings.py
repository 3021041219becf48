"""restkit.settings: typed settings from environment variables and a .env file."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from restkit.settings import MASK, Secret, SettingsError, describe, load_settings, read_env_file


@dataclass(frozen=True)
class Settings:
    database_url: str
    token: Secret[str]
    port: int = 8000
    debug: bool = False
    ratio: float = 0.5
    mode: Literal["dev", "prod"] = "dev"
    workers: Literal[1, 2, 4] = 1
    data_dir: Path = Path("/var/lib/zoo")
    hosts: list[str] = field(default_factory=list, metadata={"help": "host names served"})
    ports: list[int] = field(default_factory=lambda: [80, 443])
    log_file: Path | None = None
    timeout: float | None = 5.0
    pin: Secret[int] | None = None
    derived: str = field(default="x", init=False)


REQUIRED = {"ZOO_DATABASE_URL": "sqlite:///zoo.db", "ZOO_TOKEN": "s3cret"}


def load(environ: dict[str, str], **options: Any) -> Settings:
    return load_settings(Settings, prefix="ZOO_", environ={**REQUIRED, **environ}, **options)


def test_defaults_and_required_fields() -> None:
    settings = load({})
    assert settings.database_url == "sqlite:///zoo.db" and settings.token.reveal() == "s3cret"
    assert (settings.port, settings.debug, settings.ratio, settings.mode, settings.workers) == (8000, False, 0.5, "dev", 1)
    assert settings.data_dir == Path("/var/lib/zoo") and settings.hosts == [] and settings.ports == [80, 443]
    assert settings.log_file is None and settings.timeout == 5.0 and settings.pin is None


@pytest.mark.parametrize(
    "variable, text, attribute, value",
    [
        ("ZOO_PORT", "8080", "port", 8080),
        ("ZOO_PORT", "-1", "port", -1),
        ("ZOO_RATIO", "1e3", "ratio", 1000.0),
        ("ZOO_RATIO", "2", "ratio", 2.0),
        ("ZOO_MODE", "prod", "mode", "prod"),
        ("ZOO_WORKERS", "4", "workers", 4),
        ("ZOO_DATA_DIR", "data/zoo", "data_dir", Path("data/zoo")),
        ("ZOO_HOSTS", "a.example, b.example,", "hosts", ["a.example", "b.example"]),
        ("ZOO_HOSTS", "", "hosts", []),
        ("ZOO_PORTS", "8000,8001", "ports", [8000, 8001]),
        ("ZOO_LOG_FILE", "/tmp/zoo.log", "log_file", Path("/tmp/zoo.log")),
        ("ZOO_LOG_FILE", "", "log_file", None),
        ("ZOO_TIMEOUT", "", "timeout", None),  # empty means None even when the default is not None
        ("ZOO_TIMEOUT", "0.25", "timeout", 0.25),
        ("ZOO_PIN", "1234", "pin", Secret(1234)),
        ("ZOO_DATABASE_URL", "", "database_url", ""),  # str: empty is a value
    ],
    ids=["int", "negative-int", "float-exponent", "float-integer", "literal", "int-literal", "path", "list-str",
         "list-empty", "list-int", "optional-path", "optional-empty", "optional-empty-not-default", "optional-float",
         "secret-int", "empty-str"],
)
def test_each_type(variable: str, text: str, attribute: str, value: Any) -> None:
    assert getattr(load({variable: text}), attribute) == value


@pytest.mark.parametrize("text", ["1", "true", "TRUE", "Yes", "on", " On "])
def test_bool_true(text: str) -> None:
    assert load({"ZOO_DEBUG": text}).debug is True


@pytest.mark.parametrize("text", ["0", "false", "False", "NO", "off"])
def test_bool_false(text: str) -> None:
    assert load({"ZOO_DEBUG": text}).debug is False


def test_every_problem_is_listed_at_once_in_one_message() -> None:
    environ = {
        "ZOO_PORT": "eighty", "ZOO_DEBUG": "maybe", "ZOO_RATIO": "nan", "ZOO_MODE": "staging", "ZOO_WORKERS": "3",
        "ZOO_DATA_DIR": "", "ZOO_PORTS": "80,x", "ZOO_TIMEOUT": "soon",
    }
    with pytest.raises(SettingsError) as caught:
        load_settings(Settings, prefix="ZOO_", environ=environ)
    error = caught.value
    assert isinstance(error, ValueError)
    assert str(error).splitlines() == [
        "invalid settings (10 problems):",
        "  ZOO_DATABASE_URL: not set; expected text (required: it has no default)",
        "  ZOO_TOKEN: not set; expected text (required: it has no default)",
        "  ZOO_PORT: got 'eighty'; expected an integer",
        "  ZOO_DEBUG: got 'maybe'; expected one of 1/0, true/false, yes/no, on/off",
        "  ZOO_RATIO: got 'nan'; expected a finite number",
        "  ZOO_MODE: got 'staging'; expected one of 'dev', 'prod'",
        "  ZOO_WORKERS: got '3'; expected one of 1, 2, 4",
        "  ZOO_DATA_DIR: got '' (is empty); expected a path",
        "  ZOO_PORTS: got '80,x' (item 2, 'x', is not an integer); expected comma-separated integers",
        "  ZOO_TIMEOUT: got 'soon'; expected a finite number, or empty for none",
    ]
    assert error.problems["ZOO_MODE"] == "got 'staging'; expected one of 'dev', 'prod'"


@pytest.mark.parametrize("text", ["12.5", "1_000", "٣", "0x10", ""], ids=["float", "underscore", "arabic-digit", "hex", "empty"])
def test_int_is_ascii_digits(text: str) -> None:
    with pytest.raises(SettingsError, match="ZOO_PORT: got .*; expected an integer"):
        load({"ZOO_PORT": text})


def test_one_problem_is_singular() -> None:
    with pytest.raises(SettingsError, match=r"^invalid settings \(1 problem\):\n  ZOO_PORT: "):
        load({"ZOO_PORT": "x"})


def test_secrets_are_masked_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    settings = load({"ZOO_PIN": "4321"})
    for shown in (repr(settings), str(settings), f"{settings}", f"{settings.token}", f"{settings.token!r}",
                  f"{settings.token:>10}", str(dataclasses.asdict(settings)), "%s" % settings.token):
        assert "s3cret" not in shown and "4321" not in shown, shown
        assert MASK in shown
    assert repr(settings.token) == "Secret('********')" and str(settings.token) == MASK
    with caplog.at_level(logging.INFO):
        logging.getLogger("tests.settings").info("settings: %s %r", settings, settings.token)
    assert "s3cret" not in caplog.text and MASK in caplog.text
    assert settings.token.reveal() == "s3cret" and settings.pin is not None and settings.pin.reveal() == 4321


def test_a_malformed_secret_is_not_echoed() -> None:
    with pytest.raises(SettingsError) as caught:
        load({"ZOO_PIN": "12x4"})
    assert "12x4" not in str(caught.value)
    assert caught.value.problems["ZOO_PIN"] == "got a secret value (not shown); expected an integer, or empty for none"


ENV_FILE = """\
# the zoo, on a laptop
ZOO_DATABASE_URL=sqlite:///dev.db
export ZOO_PORT=9000
ZOO_MODE = "prod"   # quoted, with a comment
ZOO_HOSTS='a.example, b.example'
ZOO_TOKEN="say \\"hi\\"\\nthere"
ZOO_DATA_DIR=/srv/zoo#1  # '#' inside a value stays
ZOO_DEBUG=true
"""


def test_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(ENV_FILE)
    settings = load_settings(Settings, prefix="ZOO_", environ={}, env_file=env_file)
    assert settings.database_url == "sqlite:///dev.db" and settings.port == 9000 and settings.mode == "prod"
    assert settings.hosts == ["a.example", "b.example"] and settings.token.reveal() == 'say "hi"\nthere'
    assert settings.data_dir == Path("/srv/zoo#1") and settings.debug is True


def test_the_environment_wins_over_the_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(ENV_FILE)
    settings = load_settings(Settings, prefix="ZOO_", environ={"ZOO_PORT": "7000", "ZOO_DEBUG": "0"},
                             env_file=str(env_file))
    assert settings.port == 7000 and settings.debug is False and settings.database_url == "sqlite:///dev.db"


def test_a_missing_env_file_is_skipped(tmp_path: Path) -> None:
    assert load({}, env_file=tmp_path / "absent.env").port == 8000


def test_env_file_problems_are_listed_with_the_variables(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text('ZOO_PORT=eighty\nthis is not a setting\nZOO_MODE="prod\nZOO_TOKEN="x" y\n')
    with pytest.raises(SettingsError) as caught:
        load_settings(Settings, prefix="ZOO_", environ={"ZOO_DATABASE_URL": "x", "ZOO_TOKEN": "t"}, env_file=env_file)
    assert caught.value.problems == {
        f"{env_file}:2": "expected KEY=VALUE, where KEY is letters, digits and underscores",
        f"{env_file}:3": "the value of ZOO_MODE opens a \" quote that is not closed on the same line",
        f"{env_file}:4": "the value of ZOO_TOKEN has text after its closing quote: 'y'",
        "ZOO_PORT": f"got 'eighty' (from {env_file}); expected an integer",
    }


def test_read_env_file_does_not_touch_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZOO_ONLY_IN_FILE", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("ZOO_ONLY_IN_FILE=1\nEMPTY=\n")
    assert read_env_file(env_file) == ({"ZOO_ONLY_IN_FILE": "1", "EMPTY": ""}, {})
    import os

    assert "ZOO_ONLY_IN_FILE" not in os.environ


def test_os_environ_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ZOO_PORT", "8123")
    assert load_settings(Settings, prefix="ZOO_").port == 8123


@dataclass
class Unreadable:
    when: dict[str, str]


@dataclass
class NestedList:
    items: list[list[int]]


@pytest.mark.parametrize("cls, message", [
    (Unreadable, "Unreadable.when: settings cannot be read as"),
    (NestedList, "NestedList.items: list settings take items of str, int, float, bool, Path or a Literal, not list[int]"),
    (dict, "settings are declared as a dataclass"),
], ids=["dict-field", "nested-list", "not-a-dataclass"])
def test_unsupported_types_are_a_program_error(cls: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(cls, environ={})


def test_describe_lists_variables_types_and_defaults() -> None:
    assert describe(Settings, "ZOO_").splitlines() == [
        "variable          type                    default       help",
        "ZOO_DATABASE_URL  str                     (required)",
        "ZOO_TOKEN         Secret[str]             (required)",
        "ZOO_PORT          int                     8000",
        "ZOO_DEBUG         bool                    false",
        "ZOO_RATIO         float                   0.5",
        "ZOO_MODE          Literal['dev', 'prod']  dev",
        "ZOO_WORKERS       Literal[1, 2, 4]        1",
        "ZOO_DATA_DIR      Path                    /var/lib/zoo",
        "ZOO_HOSTS         list[str]               (empty)       host names served",
        "ZOO_PORTS         list[int]               80,443",
        "ZOO_LOG_FILE      Path | None             (none)",
        "ZOO_TIMEOUT       float | None            5.0",
        "ZOO_PIN           Secret[int] | None      (none)",
    ]


def test_describe_masks_secret_defaults() -> None:
    @dataclass
    class WithDefault:
        token: Secret[str] = Secret("dev-token")

    assert "dev-token" not in describe(WithDefault) and MASK in describe(WithDefault)
