"""Typed settings read from environment variables (and an optional ``.env`` file).

Declare the settings as a dataclass; each field is read from the variable
named by the prefix and the field's name in upper case::

    from dataclasses import dataclass, field
    from pathlib import Path
    from typing import Literal

    from restkit.settings import Secret, load_settings

    @dataclass(frozen=True)
    class Settings:
        database_url: str                       # ZOO_DATABASE_URL, required
        token: Secret[str]                      # ZOO_TOKEN, required, never shown
        port: int = 8000                        # ZOO_PORT
        debug: bool = False                     # ZOO_DEBUG
        mode: Literal["dev", "prod"] = "dev"    # ZOO_MODE
        hosts: list[str] = field(default_factory=list)  # ZOO_HOSTS=a.example,b.example
        log_file: Path | None = None            # ZOO_LOG_FILE

    Path(".env").write_text("ZOO_DATABASE_URL=sqlite:///zoo.db\\nZOO_TOKEN=s3cret\\n")  # or set them in the environment
    settings = load_settings(Settings, prefix="ZOO_", env_file=".env")

Field types
-----------
* ``str``: the value as it is (an empty value is the empty string);
* ``int``: ASCII digits with an optional sign (``8000``, ``-1``);
* ``float``: a finite number (``2.5``, ``1e3``; not ``nan`` or ``inf``);
* ``bool``: ``1``/``0``, ``true``/``false``, ``yes``/``no``, ``on``/``off``,
  in any case;
* ``pathlib.Path``: a non-empty path, not checked on disk;
* ``list[X]`` for any of the types above: comma-separated items, each
  stripped of surrounding spaces; empty items are skipped, so an empty
  value is an empty list;
* ``Literal["dev", "prod"]`` (strings or integers): one of the choices, as
  written (case matters);
* ``X | None``: an empty value means None, and so does an unset variable
  when the field's default is None;
* ``Secret[X]``: ``X``, wrapped so that ``repr``, ``str``, f-strings and so
  log lines show ``********``; ``.reveal()`` returns the value.  A malformed
  secret's value is never echoed in an error either.

A field with a default (or a ``default_factory``) is optional; one without is
required.  ``field(metadata={"help": "..."})`` adds a description to
:func:`describe`.  Fields with ``init=False`` are not read.  A field of any
other type is a mistake in the program, refused with :class:`TypeError`.

Errors
------
Every problem is found before any is reported: :class:`SettingsError` (a
:class:`ValueError`) lists, one line each, every variable that is missing or
malformed, what was wrong with it and what was expected, as well as every
line of the ``.env`` file that cannot be read.  Its ``problems`` attribute
holds the same as a dict (the variable name, or ``file:line``, to the text).
The dataclass's own ``__post_init__`` runs after that, and its errors are
its own.

The ``.env`` file
-----------------
``KEY=VALUE`` lines; blank lines and lines starting with ``#`` are skipped,
``export KEY=VALUE`` is accepted, a value may be quoted with ``'`` or ``"``
(kept as written inside; double quotes also understand ``\\n``, ``\\"`` and
``\\\\``), and an unquoted value ends at `` #`` (a comment).  The real
environment wins over the file.  A file that does not exist is skipped, so
the same code runs where there is none (production); the file never
changes ``os.environ``.

:func:`describe` lists the variables of a settings class, with their types,
defaults and help, for ``--help`` output.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, TypeVar, get_args, get_origin

from .validation import optional_inner

__all__ = ["MASK", "Secret", "SettingsError", "describe", "load_settings", "read_env_file"]

T = TypeVar("T")
S = TypeVar("S")

#: What a secret looks like wherever it is shown.
MASK = "********"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_INTEGER = re.compile(r"[+-]?[0-9]+")
# POSIX names (letters, digits, underscores): what a shell can export.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Secret(Generic[T]):
    """A value that is never shown: ``repr``, ``str`` and formatting give ``********``.

    Annotate a settings field with ``Secret[str]`` (or ``Secret[int]``...);
    call :meth:`reveal` where the value is really needed, so that the places
    which use the secret are easy to find.
    """

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def reveal(self) -> T:
        """The value itself."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SettingsError(ValueError):
    """Settings that cannot be read: every problem at once, one line each.

    Attributes:
        problems: the variable's name (or ``file:line`` in the ``.env`` file)
            to what is wrong with it and what was expected.
    """

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        count = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        lines = "".join(f"\n  {where}: {problem}" for where, problem in self.problems.items())
        super().__init__(f"invalid settings ({count}):{lines}")


# --- what each type accepts -----------------------------------------------------------


class _Invalid(ValueError):
    """A value that does not parse; ``detail`` says more than "got ..." when there is more to say."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class _Kind:
    """How one field type is read from text, and how it is named to people."""

    name: str  # the type as written in Python, for describe()
    expected: str  # what a value must look like, for errors
    parse: Callable[[str], Any]  # raises _Invalid
    optional: bool = False
    secret: bool = False


def _int(text: str) -> int:
    if not _INTEGER.fullmatch(text.strip()):
        raise _Invalid
    return int(text)


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _Invalid from None
    if not math.isfinite(value):  # a timeout of nan or inf is never what was meant
        raise _Invalid
    return value


def _bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _Invalid


def _path(text: str) -> pathlib.Path:
    if not text.strip():  # Path("") is ".", which nobody means by an empty value
        raise _Invalid("is empty")
    return pathlib.Path(text)


_SCALARS: dict[Any, _Kind] = {
    str: _Kind("str", "text", str),
    int: _Kind("int", "an integer", _int),
    float: _Kind("float", "a finite number", _float),
    bool: _Kind("bool", "one of 1/0, true/false, yes/no, on/off", _bool),
    pathlib.Path: _Kind("Path", "a path", _path),
}
_PLURALS = {str: "text items", int: "integers", float: "finite numbers",
            bool: "booleans (1/0, true/false, yes/no, on/off)",
            pathlib.Path: "paths"}


def _literal(choices: tuple[Any, ...]) -> _Kind:
    if not all(type(choice) in (str, int) for choice in choices):
        raise TypeError(f"Literal settings take str or int choices, not {choices!r}")
    by_text = {str(choice): choice for choice in choices}

    def parse(text: str) -> Any:
        if text not in by_text:
            raise _Invalid
        return by_text[text]

    written = ", ".join(repr(choice) for choice in choices)
    return _Kind(f"Literal[{written}]", f"one of {written}", parse)


def _list(item_type: Any) -> _Kind:
    item = _kind(item_type)
    if item.optional or item.secret or (item_type not in _SCALARS and get_origin(item_type) is not Literal):
        raise TypeError(f"list settings take items of str, int, float, bool, Path or a Literal, not {item.name}")

    def parse(text: str) -> list[Any]:
        values = []
        for number, part in enumerate((p.strip() for p in text.split(",") if p.strip()), start=1):
            try:
                values.append(item.parse(part))
            except _Invalid:
                raise _Invalid(f"item {number}, {part!r}, is not {item.expected}") from None
        return values

    plural = _PLURALS.get(item_type) or f"values, each {item.expected}"
    return _Kind(f"list[{item.name}]", f"comma-separated {plural}", parse)


def _kind(tp: Any) -> _Kind:
    """How fields of type ``tp`` are read.

    Raises:
        TypeError: restkit cannot read that type from text.
    """
    if tp in _SCALARS:
        return _SCALARS[tp]
    inner = optional_inner(tp)
    if inner is not None:
        kind = _kind(inner)
        return dataclasses.replace(kind, name=f"{kind.name} | None", expected=f"{kind.expected}, or empty for none",
                                   optional=True)
    origin = get_origin(tp)
    if origin is Secret:
        (inner,) = get_args(tp) or (str,)
        kind = _kind(inner)
        parse = kind.parse
        return dataclasses.replace(kind, name=f"Secret[{kind.name}]", parse=lambda text: Secret(parse(text)),
                                   secret=True)
    if tp is Secret:
        return _kind(Secret[str])
    if origin is Literal:
        return _literal(get_args(tp))
    if origin is list:
        (item_type,) = get_args(tp)
        return _list(item_type)
    raise TypeError(f"settings cannot be read as {getattr(tp, '__name__', tp)!r}: use str, int, float, bool, Path, "
                    "list[...], Literal[...], Secret[...] or X | None")


# --- reading --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Setting:
    field: str
    variable: str
    kind: _Kind
    default: Any  # dataclasses.MISSING when required
    help: str


def _settings_of(cls: type[Any], prefix: str) -> list[_Setting]:
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"settings are declared as a dataclass, not {cls!r}")
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        try:
            kind = _kind(hints[f.name])
        except TypeError as exc:
            raise TypeError(f"{cls.__name__}.{f.name}: {exc}") from None
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        found.append(_Setting(f.name, prefix + f.name.upper(), kind, default, str(f.metadata.get("help", ""))))
    return found


def load_settings(
    cls: type[S],
    prefix: str = "",
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | None = None,
) -> S:
    """An instance of the dataclass ``cls`` read from ``PREFIX_FIELD`` variables.

    Args:
        cls: the settings dataclass (see the module's documentation for the field types).
        prefix: put before each field's name in upper case: ``"ZOO_"`` reads ``port`` from ``ZOO_PORT``.
        environ: the variables (default: ``os.environ``).
        env_file: a ``.env`` file of defaults for the variables; ``environ`` wins over it.
            A file that does not exist is skipped.

    Raises:
        SettingsError: variables are missing or malformed, or ``.env`` lines
            cannot be read; all of them are listed.
        TypeError: ``cls`` is not a dataclass, or a field's type cannot be
            read from text (a mistake in the program, not in the environment).
    """
    settings = _settings_of(cls, prefix)
    problems: dict[str, str] = {}
    values: dict[str, str] = {}
    origin: dict[str, str] = {}
    if env_file is not None:
        values, file_problems = read_env_file(env_file)
        problems.update(file_problems)
        origin = dict.fromkeys(values, f"from {os.fspath(env_file)}")
    environ = os.environ if environ is None else environ
    for setting in settings:  # the real environment wins over the file
        if setting.variable in environ:
            values[setting.variable] = environ[setting.variable]
            origin.pop(setting.variable, None)
    found: dict[str, Any] = {}
    for setting in settings:
        name, kind = setting.variable, setting.kind
        text = values.get(name)
        if text is None:
            if setting.default is dataclasses.MISSING:
                problems[name] = f"not set; expected {kind.expected} (required: it has no default)"
            continue
        if kind.optional and not text.strip():
            found[setting.field] = None
            continue
        try:
            found[setting.field] = kind.parse(text)
        except _Invalid as exc:
            shown = "a secret value (not shown)" if kind.secret else repr(text)
            notes = [note for note in (origin.get(name), None if kind.secret else exc.detail) if note]
            where = f" ({'; '.join(notes)})" if notes else ""
            problems[name] = f"got {shown}{where}; expected {kind.expected}"
    if problems:
        raise SettingsError(problems)
    return cls(**found)


def read_env_file(path: str | os.PathLike[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The variables of a ``.env`` file, and its lines that cannot be read (``file:line`` to the problem).

    A file that does not exist has no variables.  See the module's documentation for the format.
    """
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return {}, {}
    values: dict[str, str] = {}
    problems: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            key, value = _env_line(stripped)
        except ValueError as exc:
            problems[f"{os.fspath(path)}:{number}"] = str(exc)
            continue
        values[key] = value
    return values, problems


def _env_line(line: str) -> tuple[str, str]:
    """``KEY=VALUE`` (after an optional ``export``): the key and the value, unquoted.

    Raises:
        ValueError: the line is not of that form; the message says what to write.
    """
    if line.startswith("export "):
        line = line[len("export "):].lstrip()
    key, sep, rest = line.partition("=")
    key = key.strip()
    if not sep or not _NAME.fullmatch(key):
        raise ValueError("expected KEY=VALUE, where KEY is letters, digits and underscores")
    rest = rest.strip()
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        end = _closing_quote(rest, quote)
        if end < 0:
            raise ValueError(f"the value of {key} opens a {quote} quote that is not closed on the same line")
        after = rest[end + 1:].strip()
        if after and not after.startswith("#"):
            raise ValueError(f"the value of {key} has text after its closing quote: {after!r}")
        value = rest[1:end]
        if quote == '"':
            value = re.sub(r'\\([\\"n])', lambda m: "\n" if m[1] == "n" else m[1], value)
        return key, value
    comment = re.search(r"\s#", rest)
    return key, (rest[: comment.start()] if comment else rest).rstrip()


def _closing_quote(text: str, quote: str) -> int:
    """The index of the quote that closes ``text[0]``; -1 if none.  Only double quotes take escapes."""
    index = 1
    while index < len(text):
        if quote == '"' and text[index] == "\\":
            index += 2
            continue
        if text[index] == quote:
            return index
        index += 1
    return -1


def describe(cls: type[Any], prefix: str = "") -> str:
    """The variables that :func:`load_settings` reads for ``cls``: a table of name, type, default and help.

    Secret defaults are shown masked.  For ``--help`` output, e.g. as an
    :mod:`argparse` epilog.
    """
    rows = [("variable", "type", "default", "help")]
    for setting in _settings_of(cls, prefix):
        rows.append((setting.variable, setting.kind.name, _shown_default(setting), setting.help))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
    return "\n".join(lines) + "\n"


def _shown_default(setting: _Setting) -> str:
    default = setting.default
    if default is dataclasses.MISSING:
        return "(required)"
    if default is None:
        return "(none)"
    if setting.kind.secret or isinstance(default, Secret):
        return MASK
    if isinstance(default, list):
        return ",".join(str(item) for item in default) or "(empty)"
    if isinstance(default, bool):
        return "true" if default else "false"
    return str(default)
