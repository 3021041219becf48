"""Every code block in restkit's and the examples' docstrings runs (the rules: tests/docblocks.py).

A docstring's Python blocks run in order in one fresh namespace, in a fresh
temporary directory; a block that starts ``# fragment`` is only compiled; a
block in another language says so (``.. code-block:: text``) and is skipped.
A new block that does none of these and does not run fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docblocks import (
    FRAGMENT,
    NOT_PYTHON,
    PYTHON,
    Block,
    docstring_blocks,
    isolated,
    run_block,
    shell_syntax_error,
    source_docstring_blocks,
)

DOCSTRINGS = source_docstring_blocks("restkit", "examples")


def test_docstring_blocks_are_found() -> None:
    """The collector sees the blocks (a parser that found none would pass every test below)."""
    assert len(DOCSTRINGS) >= 15
    languages = {block.language for blocks in DOCSTRINGS.values() for block in blocks}
    assert "text" in languages and languages <= PYTHON | NOT_PYTHON  # a misspelt label would skip a block


SAMPLE = '''A summary.

    Indented prose is a block quote, not code.

Usage::

    x = 1

and then::

    if x:
        y = x + 1   # deeper, still the same block

    z = y

.. code-block:: text

    a --> b

.. code-block:: python
   :caption: an option line

    w = z * 2

>>> w
4
'''


def test_the_forms_a_docstring_block_takes() -> None:
    blocks = docstring_blocks("m.py", 10, SAMPLE)
    assert [(block.line, block.language) for block in blocks] == [
        (16, "python"), (20, "python"), (27, "text"), (32, "python"), (10, "pycon")]
    assert blocks[1].code == "if x:\n    y = x + 1   # deeper, still the same block\n\nz = y\n"
    namespace: dict[str, object] = {}
    for block in blocks:
        if block.is_python:
            run_block(block, namespace)
    assert namespace["w"] == 4
    with pytest.raises(AssertionError, match="Expected"):
        run_block(Block("m.py", 1, "pycon", ">>> 1 + 1\n3\n"), {})


@pytest.mark.parametrize("where", sorted(DOCSTRINGS))
def test_docstring_blocks_run(where: str, tmp_path: Path) -> None:
    with isolated(tmp_path) as namespace:
        for block in DOCSTRINGS[where]:
            if block.is_python:
                run_block(block, namespace)
            elif block.language == "sh":
                assert shell_syntax_error(block.code) == "", block.where


def test_fragments_say_why() -> None:
    """``# fragment`` alone hides a block from running: the marker must say what it lacks."""
    short = [block.where for blocks in DOCSTRINGS.values() for block in blocks
             if block.is_fragment and len(block.code.lstrip().splitlines()[0].strip()) < len(FRAGMENT) + 8]
    assert short == []


def test_a_broken_block_fails() -> None:
    """The runner does run blocks: a failing one raises, a failing fragment only if it is not Python."""
    with pytest.raises(ZeroDivisionError):
        run_block(Block("x.py", 1, "python", "1 / 0\n"), {})
    run_block(Block("x.py", 1, "python", "# fragment: shows an expression\n1 / 0\n"), {})
    with pytest.raises(SyntaxError):
        run_block(Block("x.py", 1, "python", "# fragment: not even Python\nf(a=1, ...)\n"), {})
