"""Zoo names are unique among look-alikes: the UTS #39 skeleton (examples/zoo/names.py), its data
(examples/zoo/confusables.py) and the script that makes it (scripts/gen_confusables.py).

* :func:`skeleton` does what Unicode Technical Standard #39 says, on its examples;
* the zoo refuses ``Zoo Berlіn`` (Cyrillic і) and ``Zοο Berlin`` (Greek ο) beside ``Zoo Berlin``
  with 409, on SQLite and PostgreSQL, and ``?name=`` finds by the same key;
* a database whose keys an older rule made is re-keyed on start, the older zoo keeping the name;
* the generator turns Unicode's file format into the shipped module: a sample of
  ``confusables.txt`` gives exactly the shipped lines for its characters, and the
  shipped module is the generator's output for its own data (nobody edited it).
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import unicodedata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import webtest

from examples.zoo import confusables
from examples.zoo.app import ZooApp
from examples.zoo.engine import is_postgres
from examples.zoo.names import name_key, skeleton
from tests.conftest import make_client
from tests.test_examples_zoo import AUTH, JSON_TYPE, create, new_app, refused
from tests.zoo_pg_fixtures import pg_cluster, zoo_db, zoo_dbs  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "examples" / "zoo" / "confusables.py"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_confusables", ROOT / "scripts" / "gen_confusables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the skeleton --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "first, second",
    [
        ("scope", "\u0455\u0441\u043e\u0440\u0435"),  # UTS #39's whole-script confusable: Latin and Cyrillic
        ("paypal", "p\u0430yp\u0430l"),  # one script mixed into another (Cyrillic а)
        ("rn", "m"),  # a prototype of two characters
        ("l", "1"),
        ("l", "I"),
        ("\u01c9eto", "ljeto"),  # a ligature is its parts
        ("ab", "a\u00adb"),  # default-ignorable: removed before mapping (a soft hyphen)
        ("ab", "a\u3164b"),  # the Hangul filler is default-ignorable although it has a prototype
        ("caf\u00e9", "cafe\u0301"),  # NFD first and last
    ],
    ids=["whole-script", "mixed-script", "rn-m", "l-1", "l-I", "ligature", "soft-hyphen", "hangul-filler", "nfd"],
)
def test_skeletons_of_confusables_are_equal(first: str, second: str) -> None:
    assert skeleton(first) == skeleton(second)


def test_the_skeleton_is_nfd_and_keeps_what_is_not_confusable() -> None:
    assert skeleton("caf\u00e9") == unicodedata.normalize("NFD", "caf\u00e9")
    assert skeleton("abc xyz") == "abc xyz"
    assert skeleton("\u0455\u0441\u043e\u0440\u0435") == "scope"
    assert skeleton(skeleton("p\u0430yp\u0430l\u00ad")) == skeleton("paypal")  # prototypes map to themselves
    assert skeleton("Zoo") != skeleton("Zoe")


def test_the_data_says_its_version() -> None:
    assert confusables.VERSION.count(".") == 2 and confusables.DATE
    assert f"version {confusables.VERSION}" in GENERATED.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "first, second",
    [
        ("Zoo Berlin", "Zoo Berl\u0456n"),  # Cyrillic і
        ("Zoo Berlin", "Z\u03bf\u03bf Berlin"),  # Greek ο
        ("Zoo 2000", "zoo 2ooo"),  # 0 looks like O, and case does not count
        ("Zoo 1", "Zoo l"),
        ("Zoo Hamburg", "Zoo Harnburg"),
        ("Stra\u00dfe", "STRASSE"),  # what folding did before still holds
        ("\uff3a\uff4f\uff4f", "Zo\u200bo"),  # full-width; a zero-width space
    ],
    ids=["cyrillic-i", "greek-omicron", "zero-o", "one-l", "rn-m", "sharp-s", "full-width-zero-width"],
)
def test_look_alike_names_have_one_key(first: str, second: str) -> None:
    assert name_key(first) == name_key(second)


def test_names_that_do_not_look_alike_keep_their_keys_apart() -> None:
    names = ["Zoo Berlin", "Zoo Bern", "Zoo Basel", "Tierpark", "Zo\u00eb", "Zoe", "\u0417oo"]  # З is a 3, not a Z
    assert len({name_key(name) for name in names}) == len(names)


# --- the zoo: 409 and ?name= on both engines ---------------------------------------------------------


@pytest.fixture
def app(zoo_db: str) -> Any:
    zoo = new_app(zoo_db)
    yield zoo
    zoo.close()


@pytest.fixture
def client(app: ZooApp) -> webtest.TestApp:
    return make_client(app)


@pytest.mark.parametrize("look_alike", ["Zoo Berl\u0456n", "Z\u03bf\u03bf Berlin", "ZOO BERL\u0406N"],
                         ids=["cyrillic-i", "greek-omicron", "capitals"])
def test_a_look_alike_of_an_existing_zoo_name_is_409(client: webtest.TestApp, app: ZooApp, look_alike: str) -> None:
    assert client.get("/v1/zoos/1").json["name"] == "Zoo Berlin"  # the demo data
    body = json.dumps({"name": look_alike, "city": "Elsewhere"}).encode()
    refused(client, app, "POST", "/v1/zoos", 409, "already exists", body=body,
            headers={**AUTH, "Content-Type": JSON_TYPE})
    other = create(client, "zoos", {"name": "Tierpark", "city": "Berlin"})
    refused(client, app, "PATCH", other["links"]["self"], 409, "already exists", body=json.dumps({"name": look_alike}).encode(),
            headers={**AUTH, "Content-Type": JSON_TYPE})
    # the filter compares by the same key: the look-alike finds the real one
    assert [item["id"] for item in client.get("/v1/zoos", params={"name": look_alike}).json] == [1]
    # and the zoo itself may be renamed to a look-alike of its own name (not a conflict with itself)
    renamed = client.patch("/v1/zoos/1", json.dumps({"name": look_alike}), headers={**AUTH, "Content-Type": JSON_TYPE})
    assert renamed.status_int == 200 and renamed.json["name"] == look_alike


# --- an older database is re-keyed on start ----------------------------------------------------------


def _previous_schema(db: str, names: list[str]) -> None:
    """A database as the schema before the skeleton left it: keys by NFKC and folding alone."""

    def old_key(name: str) -> str:  # names.name_key before the skeleton
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
        return "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")

    if is_postgres(db):
        import psycopg

        from examples.zoo.store_pg import migrate

        migrate(db, empty=True, target=4)
        with psycopg.connect(db) as conn:
            for name in names:
                conn.execute("INSERT INTO zoos (name, name_key, city, created_at, updated_at)"
                             " VALUES (%s, %s, 'x', 't', 't')", (name, old_key(name)))
        return
    from examples.zoo.store import JOBS_SCHEMA, SCHEMA
    from examples.zoo.tables import ANIMAL_TYPES

    with sqlite3.connect(db) as conn:
        conn.executescript(SCHEMA + JOBS_SCHEMA)
        conn.executemany("INSERT INTO animal_types (name, description, created_at, updated_at) VALUES (?, ?, 't', 't')",
                         ANIMAL_TYPES)
        for name in names:
            conn.execute("INSERT INTO zoos (name, name_key, city, created_at, updated_at) VALUES (?, ?, 'x', 't', 't')",
                         (name, old_key(name)))
        conn.execute("PRAGMA user_version = 3")


def test_an_older_database_is_re_keyed_and_the_older_zoo_keeps_the_name(zoo_db: str) -> None:
    names = ["Zoo Berlin", "Zoo Berl\u0456n", "Other"]  # distinct before the skeleton, one name after it
    _previous_schema(zoo_db, names)
    app = new_app(zoo_db)
    try:
        client = make_client(app)
        assert [zoo["name"] for zoo in client.get("/v1/zoos").json] == names  # nothing is lost
        assert [zoo["id"] for zoo in client.get("/v1/zoos", params={"name": "zoo berlin"}).json] == [1]
        assert client.post("/v1/zoos", json.dumps({"name": "Z\u03bf\u03bf Berlin", "city": "y"}),
                           headers={**AUTH, "Content-Type": JSON_TYPE}, expect_errors=True).status_int == 409
        # the younger look-alike is still there by id, and may be renamed to a name of its own
        renamed = client.patch("/v1/zoos/2", json.dumps({"name": "Zoo Spandau"}), headers={**AUTH, "Content-Type": JSON_TYPE})
        assert renamed.status_int == 200
        assert [zoo["id"] for zoo in client.get("/v1/zoos", params={"name": "ZOO SPANDAU"}).json] == [2]
    finally:
        app.close()


# --- the generator ---------------------------------------------------------------------------------

SAMPLE = """\ufeff# confusables.txt
# Date: 2025-07-22, 05:49:37 GMT
# \u00a9 2025 Unicode\u00ae, Inc.
#
# Unicode Security Mechanisms for UTS #39
# Version: 17.0.0
#
0456 ;\t0069 ;\tMA\t# ( \u0456 \u2192 i ) CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I \u2192 LATIN SMALL LETTER I\t#

03BF ;\t006F ;\tMA\t# ( \u03bf \u2192 o ) GREEK SMALL LETTER OMICRON \u2192 LATIN SMALL LETTER O\t#
006D ;\t0072 006E ;\tMA\t# ( m \u2192 rn ) LATIN SMALL LETTER M \u2192 LATIN SMALL LETTER R, LATIN SMALL LETTER N\t#
037E ;\t003B ;\tMA\t#* ( ; \u2192 ; ) GREEK QUESTION MARK \u2192 SEMICOLON\t#
01FE ;\t004F 0338 0301 ;\tMA\t# ( \u01fe \u2192 O\u0338\u0301 ) LATIN CAPITAL LETTER O WITH STROKE AND ACUTE\t#
1D7D8 ;\t004F ;\tMA\t# ( \U0001d7d8 \u2192 O ) MATHEMATICAL DOUBLE-STRUCK DIGIT ZERO \u2192 LATIN CAPITAL LETTER O\t# \u21920\u2192
"""

SAMPLE_PROPERTIES = """# DerivedCoreProperties-17.0.0.txt
# Date: 2025-07-30, 23:55:08 GMT
0041..005A    ; Uppercase # L&  [26] LATIN CAPITAL LETTER A..LATIN CAPITAL LETTER Z
00AD          ; Default_Ignorable_Code_Point # Cf       SOFT HYPHEN
FE00..FE0F    ; Default_Ignorable_Code_Point # Mn  [16] VARIATION SELECTOR-1..VARIATION SELECTOR-16
"""


def _entries(text: str, name: str) -> set[str]:
    """The entries of the ``name = \"\"\"...\"\"\"`` block of a generated module."""
    start = text.index(f'{name} = """\\\n') + len(name) + 7
    return set(text[start:text.index('"""', start)].split())


def test_the_generator_gives_the_shipped_lines_for_a_sample() -> None:
    gen = generator()
    version, date, prototypes = gen.parse_confusables(SAMPLE)
    assert (version, date) == ("17.0.0", "2025-07-22, 05:49:37 GMT")
    assert prototypes[0x006D] == (0x72, 0x6E) and prototypes[0x037E] == (0x3B,)  # a ";" in a comment is a comment
    ignorables = gen.parse_ignorables(SAMPLE_PROPERTIES)
    assert ignorables == ("17.0.0", "2025-07-30, 23:55:08 GMT", [(0xAD, 0xAD), (0xFE00, 0xFE0F)])
    text = gen.render(gen.Data(version, date, prototypes, *ignorables))
    shipped = GENERATED.read_text(encoding="utf-8")
    assert _entries(text, "_PROTOTYPES") == {"0456:0069", "03BF:006F", "006D:0072.006E", "037E:003B",
                                             "01FE:004F.0338.0301", "1D7D8:004F"}
    assert _entries(text, "_PROTOTYPES") <= _entries(shipped, "_PROTOTYPES")
    assert _entries(text, "_IGNORABLES") <= _entries(shipped, "_IGNORABLES")
    # everything but the data is the same text
    head = text[:text.index('_PROTOTYPES = """')]
    assert shipped.startswith(head)
    assert text[text.index("\n\ndef _table"):] == shipped[shipped.index("\n\ndef _table"):]


def test_the_shipped_module_is_the_generator_s_output_for_its_own_data() -> None:
    """Nobody edited it by hand: re-rendering its data gives the file, byte for byte."""
    gen = generator()
    shipped = GENERATED.read_text(encoding="utf-8")
    prototypes = {}
    for entry in _entries(shipped, "_PROTOTYPES"):
        source, _, target = entry.partition(":")
        prototypes[int(source, 16)] = tuple(int(point, 16) for point in target.split("."))
    ranges = sorted(tuple(int(end, 16) for end in entry.split("-")) for entry in _entries(shipped, "_IGNORABLES"))
    dcp_date = shipped.split("DerivedCoreProperties.txt, version ", 1)[1].split("(", 1)[1].split(")", 1)[0]
    data = gen.Data(confusables.VERSION, confusables.DATE, prototypes, confusables.IGNORABLES_VERSION, dcp_date, ranges)
    assert gen.render(data) == shipped
    assert len(prototypes) > 6000  # the whole file, not a sample


def test_the_generator_refuses_a_line_it_cannot_read(tmp_path: Path) -> None:
    gen = generator()
    with pytest.raises(ValueError, match="line 2"):
        gen.parse_confusables("# Version: 1.0.0\n0041 ; 0061\n")
    with pytest.raises(ValueError, match="mapped twice"):
        gen.parse_confusables("# Version: 1.0.0\n# Date: x\n0041 ; 0061 ; MA\n0041 ; 0062 ; MA\n")
    source, properties, out = tmp_path / "c.txt", tmp_path / "p.txt", tmp_path / "out.py"
    source.write_text(SAMPLE, encoding="utf-8")
    properties.write_text(SAMPLE_PROPERTIES, encoding="utf-8")
    assert gen.main([str(source), str(properties), "-o", str(out)]) == 0
    spec = importlib.util.spec_from_file_location("sample_confusables", out)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "Zoo Berl\u0456n\u00ad".translate(module.SKELETON_TABLE) == "Zoo Berlin"
    assert "\u03bf".translate(module.SKELETON_TABLE) == "o" and module.VERSION == "17.0.0"
