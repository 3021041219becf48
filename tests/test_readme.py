"""The README's code samples run as written (the serve() call aside)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

from tests.conftest import make_client

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
SAMPLES = re.findall(r"```python\n(.*?)```", README, re.S)


def _run(sample: str) -> dict[str, Any]:
    """Run a sample as a module of its own, as a user's file would be."""
    module = types.ModuleType("readme_sample")
    sys.modules[module.__name__] = module  # dataclasses and type hints look modules up
    code = "\n".join(line for line in sample.splitlines() if not line.startswith("serve("))
    exec(compile(code, "README.md", "exec", dont_inherit=True), module.__dict__)
    return module.__dict__


def test_the_ten_line_example() -> None:
    sample = next(s for s in SAMPLES if "show_zoo" in s)
    client = make_client(_run(sample)["app"])
    assert client.get("/zoos/1").json == {"id": 1, "name": "Beijing Zoo"}
    assert client.get("/zoos/9", status=404).json == {"error": "zoo 9 does not exist"}


def test_the_typed_validation_example() -> None:
    sample = next(s for s in SAMPLES if "ZooIn" in s)
    client = make_client(_run(sample)["app"])
    created = client.post_json("/zoos", {"name": "Tierpark", "city": "Berlin", "opened": "1955-07-02"}, status=201)
    assert created.json == {"name": "Tierpark", "city": "Berlin", "opened": "1955-07-02"}
    refused = client.post_json("/zoos", {"name": "", "city": 3, "size": 1}, status=422).json
    assert refused["error"] == "validation failed"
    assert set(refused["details"]) == {"name", "city", "size"}
    assert client.get("/zoos?limit=5&order=desc").json == {"limit": 5, "order": "desc"}
    assert "limit" in client.get("/zoos?limit=500", status=400).json["error"]
    assert client.get("/openapi.json").json["paths"]["/zoos"]["post"]["summary"] == "Create a zoo."
    assert client.get("/docs").content_type == "text/html"


def test_the_testing_example_passes_under_pytest(tmp_path: Path) -> None:
    import os
    import subprocess

    sample = next(s for s in SAMPLES if "def create_app" in s and "webtest" in s)
    (tmp_path / "test_items.py").write_text(sample)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_items.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "3 passed" in done.stdout


def test_the_route_options_table_lists_every_option() -> None:
    from restkit.routing import ROUTE_OPTIONS

    table = README.split("| option | what it is | default |", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"^\s*\| `(\w+)` \|", table, re.M)
    assert listed == list(ROUTE_OPTIONS)
