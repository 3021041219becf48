"""Packaging: zero runtime dependencies, standard library only, typed."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import copy_source_tree

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "restkit"


def _imported_top_level_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


# The pytest plugin is loaded by pytest alone (its pytest11 entry point), never by restkit.
# The shared stores import psycopg (the "postgres" extra) inside the function that connects, never at import;
# so does restkit.jobs' PostgreSQL store.
ALSO_ALLOWED = {"pytest_plugin.py": {"pytest"}, "storage.py": {"psycopg"}, "jobs/store_postgres.py": {"psycopg"}}


@pytest.mark.parametrize("module", sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")))
def test_imports_only_the_standard_library(module: str) -> None:
    allowed = set(sys.stdlib_module_names) | {"restkit", "__future__"} | ALSO_ALLOWED.get(module, set())
    outside = _imported_top_level_modules(PACKAGE / module) - allowed
    assert not outside, f"restkit/{module} imports {sorted(outside)}"


def test_py_typed_and_the_docs_page_are_shipped() -> None:
    for data in ("py.typed", "docs.html"):
        assert (PACKAGE / data).exists()
        assert f'"{data}"' in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize("package", ["restkit", "examples"])
def test_mypy_strict_passes(package: str) -> None:
    """The library, and the examples that show how to use it (they type-check against it)."""
    pytest.importorskip("mypy", reason="mypy is a test dependency: pip install '.[test]'")
    result = subprocess.run([sys.executable, "-m", "mypy", package], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pip_install_into_an_empty_venv_installs_restkit_alone(tmp_path: Path) -> None:
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    before = _installed(python)
    source = copy_source_tree(tmp_path / "src")
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(source)], check=True, timeout=600, capture_output=True)
    added = _installed(python) - before
    assert added == {"restkit"}
    probe = (
        "import restkit, sys; print(restkit.__version__); assert 'restkit' in sys.modules\n"
        "from restkit.docs import docs_page; assert '<script>' in docs_page('T', '/openapi.json')  # docs.html shipped\n"
        "from restkit.jobs import Jobs, SQLiteStore  # the subpackages are shipped\n"
    )
    result = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0.1.0"


def _installed(python: Path) -> set[str]:
    out = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], check=True, capture_output=True, text=True)
    return {entry["name"].lower() for entry in json.loads(out.stdout)}


def test_import_restkit_loads_no_heavy_module() -> None:
    """`import restkit` stays fast: what only some apps need is imported on first use (see restkit/lazy.py)."""
    code = (  # -S: no site, so only what restkit imports is loaded (an editable install's finder imports more)
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import restkit\n"
        "heavy = {'http', 'urllib.parse', 'json', 'email', 'logging', 'dataclasses', 'socket', 'inspect', 'uuid'}\n"
        "assert not heavy & set(sys.modules), sorted(heavy & set(sys.modules))\n"
        "from restkit.status import status_line\n"
        "assert status_line(404) == '404 Not Found' and status_line(599) == '599 Server Error'\n"
    )
    subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, check=True, timeout=60)
