"""The key under which zoo names are unique, and by which ``?name=`` finds a zoo.

``name_key(name)`` is

1. NFKC normalisation, Unicode case folding, NFKC again (folding can undo a
   composition) and no format characters (category Cf: zero-width space and
   joiners, soft hyphen, bidi marks), so "Café" in NFC and NFD, "ＺＯＯ" and
   "zoo", "Zoo\\u200b" and "Zoo", "STRASSE" and "Straße" are one name;
2. then the confusable skeleton of Unicode Technical Standard #39
   (:func:`skeleton`), folded again, so letters of other scripts that look
   like Latin ones are one name too: "Zoo Berlіn" (a Cyrillic і) and "Zοο
   Berlin" (Greek ο) are "Zoo Berlin".  The skeleton is deliberately wide:
   "rn" and "m", "l", "1" and "I", "0" and "O" are confusable, so "Zoo 1" and
   "Zoo l" cannot both exist.

Both stores keep the key in ``zoos.name_key`` under a unique index and
compare ``?name=`` filters against it, with this one function.  The key is
for comparing only: it is never shown.  A change of the rule (or of the
Unicode data) changes the keys: the stores recompute the stored ones in a
schema step (:func:`examples.zoo.tables.rekey_zoos`), and of two existing
zoos whose names became one, the older keeps the key.

The data is Unicode's ``confusables.txt`` (version in
:data:`examples.zoo.confusables.VERSION`), turned into
:mod:`examples.zoo.confusables` by ``scripts/gen_confusables.py``.
Decomposition and case folding are the running Python's (its
``unicodedata.unidata_version``), which may be an older Unicode version:
characters it does not know are kept as they are.
"""

from __future__ import annotations

import unicodedata

from .confusables import SKELETON_TABLE

__all__ = ["name_key", "skeleton"]


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of ``text``: NFD, without default-ignorable code points,
    each character replaced by its prototype from ``confusables.txt``, NFD again.

    Two strings are confusable when their skeletons are equal.
    """
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).translate(SKELETON_TABLE))


def name_key(name: str) -> str:
    """The comparison key of a name: NFKC, case-folded, without format characters, then its folded skeleton."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    if not folded.isascii():  # PERF(names): nearly every name is ASCII, where no character can be Cf
        folded = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    # folded again: a prototype may be a capital ("0" is confusable with "O")
    return skeleton(folded).casefold()
