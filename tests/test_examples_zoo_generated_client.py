"""A client generated from the zoo's ``/openapi.json`` works against the real zoo.

``openapi-python-client`` (offline, from the document the live zoo serves,
saved to a file) writes a package into a temporary directory; the test
imports it and runs the zoo's main calls through it against ``python -m
examples.zoo``: lists in both paging styles and without paging, create,
show, update with ``If-Match`` (and a stale one), delete, and a report job
submitted and polled.  A call the document describes wrongly shows up here
as a wrong type, an ``UnexpectedStatus`` or a request the zoo refuses.
"""

from __future__ import annotations

import datetime
import importlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import free_port, stop_process
from tests.test_examples_zoo_server import ROOT, wait_until_serving

TOKEN = "generated-client-token"
GENERATOR = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent)) or shutil.which(
    "openapi-python-client"
)
PACKAGE = "zoo_api_client"
# No post hooks: the generator would run ruff on the package (style only, and a tool CI need not have).
CONFIG = f"package_name_override: {PACKAGE}\nproject_name_override: zoo-api-client\npost_hooks: []\n"


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a live ``python -m examples.zoo`` with the demo data."""
    tmp = tmp_path_factory.mktemp("zoo")
    port = free_port()
    log = (tmp / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.zoo", "--port", str(port), "--db", str(tmp / "zoo.db"),
         "--token", TOKEN, "--rate-limit", "0"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_until_serving(process, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)
        log.close()
    output = (tmp / "server.log").read_text()
    assert "Traceback" not in output, output[-3000:]


@pytest.fixture(scope="module")
def api(zoo: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated package, imported; removed from ``sys.modules`` and ``sys.path`` afterwards."""
    if GENERATOR is None:
        pytest.skip("openapi-python-client is not installed (pip install openapi-python-client)")
    pytest.importorskip("httpx")  # what the generated client calls the server with
    pytest.importorskip("attrs")
    out = tmp_path_factory.mktemp("generated")
    document = out / "openapi.json"
    with urllib.request.urlopen(f"{zoo}/openapi.json", timeout=10) as answer:
        document.write_bytes(answer.read())
    (out / "config.yml").write_text(CONFIG)
    # offline: from the file, and any attempt to reach the network goes to a proxy that is not there
    offline = {name: "http://127.0.0.1:9" for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                                        "http_proxy", "https_proxy", "all_proxy")}
    done = subprocess.run(
        [GENERATOR, "generate", "--path", str(document), "--config", str(out / "config.yml"),
         "--meta", "none", "--output-path", str(out / PACKAGE)],
        cwd=out, capture_output=True, text=True, timeout=120,
        env={**os.environ, **offline, "NO_PROXY": "", "no_proxy": ""},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    # a warning means a part of the document it could not turn into code (an operation or a model left out)
    assert "Warning" not in done.stdout + done.stderr, done.stdout[-4000:] + done.stderr[-4000:]
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


@pytest.fixture
def reader(api: ModuleType, zoo: str) -> Any:
    return api.Client(base_url=zoo, raise_on_unexpected_status=True)


@pytest.fixture
def writer(api: ModuleType, zoo: str) -> Any:
    return api.AuthenticatedClient(base_url=zoo, token=TOKEN, raise_on_unexpected_status=True)


def test_lists_page_with_limit_offset_page_per_page_and_without(reader: Any) -> None:
    list_zoos = module("api.zoos.list_zoos")
    Item = module("models").Item
    everything = list_zoos.sync_detailed(client=reader)
    assert everything.status_code == 200
    assert all(isinstance(item, Item) for item in everything.parsed)
    total = int(everything.headers["X-Total-Count"])
    assert total >= 2 and len(everything.parsed) == total
    names = [item.name for item in everything.parsed]
    assert "Zoo Berlin" in names

    by_offset = list_zoos.sync_detailed(client=reader, limit=1, offset=1)
    assert by_offset.status_code == 200
    assert [item.name for item in by_offset.parsed] == names[1:2]
    assert 'rel="next"' in by_offset.headers["Link"] or total == 2
    assert "limit=1&offset=0" in by_offset.headers["Link"]

    by_page = list_zoos.sync_detailed(client=reader, page=2, per_page=1)
    assert by_page.status_code == 200
    assert [item.name for item in by_page.parsed] == names[1:2]
    assert "page=1&per_page=1" in by_page.headers["Link"]

    # sorting and a typed filter go through too
    desc = list_zoos.sync(client=reader, sortby=module("models").ListZoosSortby.NAME,
                          order=module("models").ListZoosOrder.DESC)
    assert [item.name for item in desc] == sorted(names, key=str.lower, reverse=True)  # the store sorts text without case
    assert list_zoos.sync(client=reader, name="zoo berlin")[0].name == "Zoo Berlin"


def test_create_show_update_with_if_match_and_delete(reader: Any, writer: Any) -> None:
    models = module("models")
    created = module("api.zoos.create_zoo").sync_detailed(
        client=writer, body=models.ZooIn(name="Generated Zoo", city="Basel", opened=datetime.date(1874, 7, 3))
    )
    assert created.status_code == 201, created.content
    zoo = created.parsed
    assert isinstance(zoo, models.Zoo)
    assert zoo.name == "Generated Zoo" and zoo.opened == datetime.date(1874, 7, 3)
    assert isinstance(zoo.created_at, datetime.datetime) and zoo.created_at.tzinfo is not None
    assert created.headers["Location"].endswith(f"/v1/zoos/{zoo.id}")

    show_zoo = module("api.zoos.show_zoo")
    shown = show_zoo.sync_detailed(zoo=zoo.id, client=reader)
    assert shown.status_code == 200 and shown.parsed.to_dict() == zoo.to_dict()
    etag = shown.headers["ETag"]

    update_zoo = module("api.zoos.update_zoo")
    updated = update_zoo.sync_detailed(zoo=zoo.id, client=writer, body=models.UpdateZooBody(city="Zürich"),
                                       if_match=etag)
    assert updated.status_code == 200, updated.content
    assert isinstance(updated.parsed, models.Zoo) and updated.parsed.city == "Zürich"
    assert updated.headers["ETag"] != etag

    stale = update_zoo.sync_detailed(zoo=zoo.id, client=writer, body=models.UpdateZooBody(city="Bern"), if_match=etag)
    assert stale.status_code == 412
    assert isinstance(stale.parsed, models.Error) and stale.parsed.error
    assert show_zoo.sync(zoo=zoo.id, client=reader).city == "Zürich"

    # an optional field sent as null clears it
    cleared = update_zoo.sync(zoo=zoo.id, client=writer, body=models.UpdateZooBody(opened=None))
    assert isinstance(cleared, models.Zoo) and cleared.opened is None

    duplicate = module("api.zoos.create_zoo").sync_detailed(client=writer, body=models.ZooIn(name="GENERATED zoo", city="X"))
    assert duplicate.status_code == 409 and isinstance(duplicate.parsed, models.Error)

    deleted = module("api.zoos.delete_zoo").sync_detailed(zoo=zoo.id, client=writer)
    assert deleted.status_code == 204 and deleted.parsed is None
    gone = show_zoo.sync_detailed(zoo=zoo.id, client=reader)
    assert gone.status_code == 410 and isinstance(gone.parsed, models.Error)


def test_a_report_job_is_submitted_and_polled(reader: Any, writer: Any) -> None:
    models = module("models")
    submitted = module("api.jobs.create_report").sync_detailed(zoo=1, client=writer)
    assert submitted.status_code == 202, submitted.content
    job = submitted.parsed
    assert isinstance(job, models.Job) and job.status in (models.JobStatus.PENDING, models.JobStatus.RUNNING,
                                                         models.JobStatus.DONE)
    show_job = module("api.jobs.show_job")
    deadline = time.monotonic() + 30
    while job.status not in (models.JobStatus.DONE, models.JobStatus.FAILED):
        assert time.monotonic() < deadline, f"job {job.id} still {job.status} after 30 s"
        time.sleep(0.1)
        job = show_job.sync(job=job.id, client=reader)
        assert isinstance(job, models.Job)
    assert job.status == models.JobStatus.DONE
    report = module("api.jobs.show_job_result").sync(job=job.id, client=reader)
    assert isinstance(report, models.Report)
    assert report.zoo_id == 1 and report.animals >= 1
    assert sum(report.animals_by_type.additional_properties.values()) == report.animals
    assert isinstance(report.generated_at, datetime.datetime) and isinstance(job.created_at, datetime.datetime)
    missing = show_job.sync_detailed(job=10**9, client=reader)
    assert missing.status_code == 404 and isinstance(missing.parsed, models.Error)



def test_v2_answers_carry_typed_dates(reader: Any) -> None:
    """v2's models declare dates as dates: the client parses them, not strings."""
    models = module("models")
    zoo = module("api.v2.v2_show_zoo").sync(zoo=1, client=reader)
    assert isinstance(zoo, models.ZooV2)
    assert isinstance(zoo.created_at, datetime.datetime) and isinstance(zoo.opened, datetime.date)
    animal = module("api.v2.v2_show_animal").sync(animal=1, client=reader)
    assert isinstance(animal, models.AnimalV2) and isinstance(animal.updated_at, datetime.datetime)
