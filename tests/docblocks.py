"""Code blocks in documentation, found and run: the rules that keep restkit's docs executable.

Where blocks are found
----------------------
* Markdown (``README.md``, ``examples/*/README.md``): fenced blocks.  Every fence
  names its language (```` ```python ````, ```` ```sh ````, ```` ```text ````...);
  a fence without one is an error, so no Python hides in an unlabelled block.
* Docstrings (module, class and function docstrings of ``restkit/**/*.py`` and
  ``examples/**/*.py``): a reST literal block (the indented lines after a
  paragraph ending in ``::``) is Python, as in Sphinx; other languages say so
  with a directive, ``.. code-block:: text`` (or ``sh``, ``console``, ``http``...).
  Fenced ```` ```python ```` blocks count too, and ``>>>`` lines are doctests.

How they run
------------
* Only Python runs; other languages are skipped by their label (``sh`` blocks
  are checked with ``bash -n``).
* A block whose first line is a comment starting ``# fragment`` (say why:
  ``# fragment: an excerpt of schemas.py``) cannot run alone; it is still
  compiled, so it is at least Python.
* The blocks of one docstring run in order in one fresh module namespace, with
  nothing imported for them: a block imports what it uses, as the file a user
  copies it into would.  A later block of the same docstring may use what an
  earlier one defined.  A Markdown block runs alone, in a namespace of its own.
* The current directory is a fresh temporary one, so SQLite files and ``.env``
  files a block makes go there.  Afterwards the restkit objects and SQLite
  connections the blocks left in their namespace are closed, and the logging
  filters they put on the root logger's handlers are taken off.
* In Markdown, a line starting ``serve(`` is left out (it would serve forever);
  the app it would serve is made all the same.
"""

from __future__ import annotations

import ast
import contextlib
import doctest
import logging
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOT_PYTHON = {"text", "sh", "shell", "bash", "console", "http", "json", "yaml", "toml", "ini", "haproxy", "html",
              "dockerfile", "diff"}
PYTHON = {"python", "py", "python3", "pycon"}
FRAGMENT = "# fragment"

_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
_DIRECTIVE = re.compile(r"^\s*\.\. (?:code-block|code|sourcecode)::\s*(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    """One code block: where it is (``path:line`` of its first line), its language and its code."""

    path: str
    line: int
    language: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def is_python(self) -> bool:
        return self.language in PYTHON

    @property
    def is_fragment(self) -> bool:
        return self.code.lstrip().startswith(FRAGMENT)


class UnlabelledBlock(Exception):
    """A Markdown fence without a language, or a docstring directive without one."""


def markdown_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, in order."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    where = str(path.relative_to(ROOT))
    index = 0
    while index < len(lines):
        opened = _FENCE.match(lines[index])
        index += 1
        if not opened:
            continue
        if not opened.group(2):
            raise UnlabelledBlock(f"{where}:{index}: a fence without a language (write ```text, ```sh, ```python...)")
        start = index
        while index < len(lines) and not _FENCE.match(lines[index]):
            index += 1
        code = textwrap.dedent("\n".join(lines[start:index])) + "\n"
        blocks.append(Block(where, start + 1, opened.group(2).lower(), code))
        index += 1  # the closing fence
    return blocks


def _docstring_lines(text: str) -> list[str]:
    """The docstring's lines with the common indentation of lines 2.. removed (as inspect.cleandoc), none dropped."""
    lines = text.expandtabs().splitlines()
    indents = [len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()]
    common = min(indents, default=0)
    return [lines[0].strip()] + [line[common:] for line in lines[1:]]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _indented_block(lines: list[str], start: int, base: int) -> tuple[int, int]:
    """The (first, end) line indexes of the block indented deeper than ``base`` from ``start`` on."""
    first = start
    while first < len(lines) and not lines[first].strip():
        first += 1
    end = first
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > base):
        end += 1
    while end > first and not lines[end - 1].strip():
        end -= 1
    return first, end


def docstring_blocks(where: str, first_line: int, text: str) -> list[Block]:
    """The code blocks of one docstring (``first_line``: the file line its text starts on)."""
    lines = _docstring_lines(text)
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        directive = _DIRECTIVE.match(line)
        fence = _FENCE.match(line)
        if directive or (line.rstrip().endswith("::") and not line.lstrip().startswith("..")):
            language = (directive.group(1) if directive else "python").lower()
            if directive and not language:
                raise UnlabelledBlock(f"{where}:{first_line + index}: a code-block directive without a language")
            body = index + 1
            while directive and body < len(lines) and lines[body].strip().startswith(":"):
                body += 1  # the directive's options (:caption: ...)
            first, end = _indented_block(lines, body, _indent(line))
            if end > first:
                code = textwrap.dedent("\n".join(lines[first:end])) + "\n"
                blocks.append(Block(where, first_line + first, language, code))
            index = max(end, index + 1)
        elif fence:
            language = fence.group(2).lower() or "python"
            end = index + 1
            while end < len(lines) and not _FENCE.match(lines[end]):
                end += 1
            code = textwrap.dedent("\n".join(lines[index + 1:end])) + "\n"
            blocks.append(Block(where, first_line + index + 1, language, code))
            index = end + 1
        else:
            index += 1
    if ">>>" in text:
        blocks.append(Block(where, first_line, "pycon", text))
    return blocks


def _docstrings(path: Path) -> Iterator[tuple[int, str]]:
    """(first line, text) of every module, class and function docstring of a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                yield first.lineno, first.value.value


def source_docstring_blocks(*folders: str) -> dict[str, list[Block]]:
    """Every docstring with code blocks under ``folders``, by ``path:line`` of the docstring."""
    found: dict[str, list[Block]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            for line, text in _docstrings(path):
                blocks = docstring_blocks(where, line, text)
                if blocks:
                    found[f"{where}:{line}"] = blocks
    return found


def new_namespace(name: str = "docblock") -> dict[str, Any]:
    """A fresh module's namespace, registered in ``sys.modules`` (dataclasses and type hints look it up)."""
    module = types.ModuleType(name)
    module.__file__ = str(ROOT / f"{name}.py")
    sys.modules[name] = module
    return module.__dict__


@contextlib.contextmanager
def isolated(directory: Path, name: str = "docblock") -> Iterator[dict[str, Any]]:
    """A fresh namespace for blocks, run in ``directory``; what they leave open is closed after."""
    before = os.getcwd()
    handlers = {handler: list(handler.filters) for handler in logging.getLogger().handlers}
    os.chdir(directory)
    namespace = new_namespace(name)
    try:
        yield namespace
    finally:
        for value in list(namespace.values()):
            if isinstance(value, sqlite3.Connection) or (
                    type(value).__module__.startswith("restkit.") and callable(getattr(value, "close", None))):
                value.close()
        for handler in logging.getLogger().handlers:
            handler.filters[:] = handlers.get(handler, handler.filters)
        sys.modules.pop(name, None)
        os.chdir(before)


def run_block(block: Block, namespace: dict[str, Any], *, leave_out: tuple[str, ...] = ()) -> None:
    """Compile a Python block (with its file's line numbers in tracebacks) and, unless a fragment, run it."""
    if block.language == "pycon":
        _run_doctest(block, namespace)
        return
    lines = [line for line in block.code.splitlines() if not line.startswith(leave_out)] if leave_out else [block.code]
    source = "\n" * (block.line - 1) + "\n".join(lines) + "\n"
    code = compile(source, block.path, "exec", dont_inherit=True)
    if not block.is_fragment:
        exec(code, namespace)


def shell_syntax_error(script: str) -> str:
    """What ``bash -n`` says about a shell block (empty when it parses)."""
    done = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, timeout=30)
    return done.stderr


def _run_doctest(block: Block, namespace: dict[str, Any]) -> None:
    test = doctest.DocTestParser().get_doctest(block.code, namespace, block.where, block.path, block.line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    runner.run(test, out=report.append, clear_globs=False)
    if runner.failures:
        raise AssertionError("".join(report))
