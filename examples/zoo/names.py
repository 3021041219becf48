"""The key under which zoo names are unique, and by which ``?name=`` finds a zoo.

``name_key(name)`` is NFKC normalisation, Unicode case folding, NFKC again
(folding can undo a composition) and no format characters (category Cf:
zero-width space and joiners, soft hyphen, bidi marks), so "Café" in NFC
and NFD, "ＺＯＯ" and "zoo", "Zoo\\u200b" and "Zoo", "STRASSE" and
"Straße" are one name.  Both stores keep the key in ``zoos.name_key`` under
a unique index and compare filters against it.

Not covered: confusable letters of other scripts (a Cyrillic "о" for a
Latin "o"); that takes the UTS #39 skeleton tables, which the standard
library does not have.
"""

from __future__ import annotations

import unicodedata

__all__ = ["name_key"]


def name_key(name: str) -> str:
    """The comparison key of a name: NFKC, case-folded, without format characters."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    if folded.isascii():  # PERF(names): nearly every name; no character can be Cf
        return folded
    return "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
