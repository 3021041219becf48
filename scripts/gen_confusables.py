"""Write ``examples/zoo/confusables.py``, the data of the UTS #39 skeleton, from Unicode's own files.

::

    python scripts/gen_confusables.py confusables.txt DerivedCoreProperties.txt \\
        -o examples/zoo/confusables.py

* ``confusables.txt`` (https://www.unicode.org/Public/security/latest/confusables.txt):
  each line maps a source character to its prototype (``0441 ;	0063 ;	MA	# ...``);
* ``DerivedCoreProperties.txt`` (https://www.unicode.org/Public/UCD/latest/ucd/):
  the ``Default_Ignorable_Code_Point`` ranges, which the skeleton removes first.

Nothing is downloaded: the files are read from the paths given (this machine
may have no network).  The output is the same for the same input, sorted by
code point, so a new Unicode version is a readable diff; the versions and
dates of both files are written into it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["Data", "main", "parse_confusables", "parse_ignorables", "render"]

_VERSION = re.compile(r"#\s*Version:\s*(\S+)")
_DATE = re.compile(r"#\s*Date:\s*(.+?)\s*$")
_DCP_VERSION = re.compile(r"#\s*DerivedCoreProperties-(\S+?)\.txt")
_WRAP = 8  # entries a line in the generated module: short lines, a small file


class Data:
    """What the generated module holds: the two files' versions and dates, the prototypes and the ignorables."""

    def __init__(self, version: str, date: str, prototypes: dict[int, tuple[int, ...]],
                 ignorables_version: str, ignorables_date: str, ignorables: list[tuple[int, int]]) -> None:
        self.version = version
        self.date = date
        self.prototypes = prototypes
        self.ignorables_version = ignorables_version
        self.ignorables_date = ignorables_date
        self.ignorables = ignorables


def _header(lines: Sequence[str], pattern: re.Pattern[str], what: str) -> str:
    for line in lines[:20]:
        found = pattern.match(line)
        if found:
            return found[1]
    raise ValueError(f"no {what} in the file's header")


def parse_confusables(text: str) -> tuple[str, str, dict[int, tuple[int, ...]]]:
    """The version, the date and ``{source: prototype code points}`` of a ``confusables.txt``.

    Raises:
        ValueError: a line that is not ``source ; target ; type``, a source given twice.
    """
    lines = text.lstrip("\ufeff").splitlines()
    prototypes: dict[int, tuple[int, ...]] = {}
    for number, line in enumerate(lines, 1):
        fields = [field.strip() for field in line.partition("#")[0].split(";")]  # a comment may hold ";"
        if fields == [""]:
            continue
        if len(fields) != 3 or not fields[0] or not fields[1]:
            raise ValueError(f"line {number}: not 'source ; target ; type': {line!r}")
        source = int(fields[0], 16)
        if source in prototypes:
            raise ValueError(f"line {number}: {fields[0]} is mapped twice")
        prototypes[source] = tuple(int(point, 16) for point in fields[1].split())
    return _header(lines, _VERSION, "Version"), _header(lines, _DATE, "Date"), prototypes


def parse_ignorables(text: str) -> tuple[str, str, list[tuple[int, int]]]:
    """The version, the date and the ``Default_Ignorable_Code_Point`` ranges of a ``DerivedCoreProperties.txt``."""
    lines = text.lstrip("\ufeff").splitlines()
    ranges: list[tuple[int, int]] = []
    for line in lines:
        fields = [field.strip() for field in line.partition("#")[0].split(";")]
        if len(fields) == 2 and fields[1] == "Default_Ignorable_Code_Point":
            first, _, last = fields[0].partition("..")
            ranges.append((int(first, 16), int(last or first, 16)))
    if not ranges:
        raise ValueError("no Default_Ignorable_Code_Point in the file")
    return _header(lines, _DCP_VERSION, "version"), _header(lines, _DATE, "Date"), sorted(ranges)


def _block(entries: Iterable[str]) -> str:
    items = list(entries)
    return "".join(" ".join(items[i:i + _WRAP]) + "\n" for i in range(0, len(items), _WRAP))


def render(data: Data) -> str:
    """The text of the generated module."""
    prototypes = _block(f"{source:04X}:{'.'.join(f'{point:04X}' for point in target)}"
                        for source, target in sorted(data.prototypes.items()))
    ignorables = _block(f"{first:04X}-{last:04X}" for first, last in data.ignorables)
    return f'''"""The data of the UTS #39 skeleton (:func:`examples.zoo.names.skeleton`).  Generated: do not edit.

Made by ``scripts/gen_confusables.py`` from Unicode's files:

* confusables.txt, Unicode Security Mechanisms for UTS #39, version {data.version} ({data.date});
* DerivedCoreProperties.txt, version {data.ignorables_version} ({data.ignorables_date}): Default_Ignorable_Code_Point.

© Unicode, Inc.; terms of use: https://www.unicode.org/terms_of_use.html
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["SKELETON_TABLE", "VERSION"]

#: the version of confusables.txt
VERSION = "{data.version}"
DATE = "{data.date}"
IGNORABLES_VERSION = "{data.ignorables_version}"

# source:prototype, in hex (code points of a prototype joined by "."), by source
_PROTOTYPES = """\\
{prototypes}"""

# first-last code points of the Default_Ignorable_Code_Point ranges, in hex
_IGNORABLES = """\\
{ignorables}"""


def _table() -> dict[int, str | None]:
    table: dict[int, str | None] = {{}}
    for entry in _PROTOTYPES.split():
        source, _, target = entry.partition(":")
        table[int(source, 16)] = "".join(chr(int(point, 16)) for point in target.split("."))
    for entry in _IGNORABLES.split():  # last: an ignorable is removed before any mapping
        first, _, last = entry.partition("-")
        table.update(dict.fromkeys(range(int(first, 16), int(last, 16) + 1)))
    return table


#: for ``str.translate``: a default-ignorable code point removed (None), a confusable replaced by its prototype
SKELETON_TABLE: Mapping[int, str | None] = MappingProxyType(_table())
'''


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("confusables", type=Path, help="Unicode's confusables.txt")
    parser.add_argument("properties", type=Path, help="Unicode's DerivedCoreProperties.txt")
    parser.add_argument("-o", "--output", type=Path, help="the module to write (default: standard output)")
    args = parser.parse_args(argv)
    version, date, prototypes = parse_confusables(args.confusables.read_text(encoding="utf-8"))
    ignorables_version, ignorables_date, ignorables = parse_ignorables(args.properties.read_text(encoding="utf-8"))
    text = render(Data(version, date, prototypes, ignorables_version, ignorables_date, ignorables))
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
