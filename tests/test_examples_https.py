"""The zoo and the screencast over HTTPS, as their users start them (``--certfile``/``--keyfile``).

The seed conventions say "always use HTTPS": both example CLIs pass the
certificate to ``restkit.serve``.  The certificates come from trustme.
"""

from __future__ import annotations

import http.client
import json
import signal
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, stop_process
from tests.wire import wait_until_listening

ROOT = Path(__file__).resolve().parent.parent
trustme = pytest.importorskip("trustme", reason="trustme (the test extra) makes the throwaway certificates")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("example-tls")
    cert, key, ca = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    certificate.cert_chain_pems[0].write_to_path(str(cert))
    for blob in certificate.cert_chain_pems[1:]:
        blob.write_to_path(str(cert), append=True)
    certificate.private_key_pem.write_to_path(str(key))
    authority.cert_pem.write_to_path(str(ca))
    return {"cert": str(cert), "key": str(key), "context": ssl.create_default_context(cafile=str(ca))}


def start(module: str, port: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def https_get(port: int, path: str, context: ssl.SSLContext, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_zoo_over_https(tmp_path: Path, tls_files: dict[str, Any]) -> None:
    port = free_port()
    process = start("examples.zoo", port, "--db", str(tmp_path / "zoo.db"), "--create", "--token", "t",
                    "--certfile", tls_files["cert"], "--keyfile", tls_files["key"])
    try:
        wait_until_listening(port, process)
        status, root = https_get(port, "/v1", tls_files["context"])
        assert status == 200 and {link["rel"] for link in root} >= {"zoos", "animals"}
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=tls_files["context"], timeout=10)
        try:
            connection.request("POST", "/v1/zoos", body=json.dumps({"name": "Secure Zoo", "city": "Bern"}),
                               headers={"Authorization": "Bearer t", "Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        assert response.status == 201
        assert response.getheader("Location", "").startswith(f"https://127.0.0.1:{port}/v1/zoos/")
    finally:
        assert stop_process(process, signal.SIGTERM) == 0
    out, _ = process.communicate()
    assert f"https://127.0.0.1:{port}/v1" in out


def test_screencast_over_https(tls_files: dict[str, Any]) -> None:
    pytest.importorskip("PIL", reason="the screencast needs Pillow (the examples extra)")
    port = free_port()
    process = start("examples.screencast", port, "--source", "pattern",
                    "--certfile", tls_files["cert"], "--keyfile", tls_files["key"])
    try:
        wait_until_listening(port, process)
        status, stats = https_get(port, "/stats", tls_files["context"])
        assert status == 200 and "viewers" in stats
    finally:
        assert stop_process(process, signal.SIGTERM) == 0


@pytest.mark.parametrize("module", ["examples.zoo", "examples.screencast"])
def test_certfile_without_keyfile_is_a_usage_error(module: str, tls_files: dict[str, Any]) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--certfile", tls_files["cert"]],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "--certfile and --keyfile go together" in done.stderr
