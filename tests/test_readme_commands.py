"""Every command of the README's Quick start and command-line sections is run, as written.

The commands are read from the README, not copied here, and each one is known
to one of the tests below (a new command fails :func:`test_every_command_is_run`):

* the Quick start's first line runs whole: a virtual environment, ``pip install .``
  and the zoo, asked one request and stopped with Ctrl-C;
* the Quick start's second line is the one ``.ci/run`` runs (the whole suite, which
  cannot run inside itself); here its ``pip install`` is resolved with ``--dry-run``
  in the environment the first line made;
* ``python -m restkit routes|openapi|check ...`` run in tests/test_cli_introspection.py;
* every other ``python -m restkit SPEC ...`` serves the "Ten lines" example (saved
  as ``mymodule.py``, as the README says) or a ``create_app()`` factory, answers one
  request and stops on Ctrl-C with exit status 0.

Servers listen on a free port: a ``--port`` in a command is the one thing replaced
(and added where the command leaves the default, 8000).
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from restkit.server import Server
from tests.conftest import ROOT, copy_source_tree, free_port
from tests.docblocks import markdown_blocks, shell_syntax_error
from tests.wire import cli_env, get, ipv6_loopback, wait_until_listening

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    """The README's text from a ``## title`` heading to the next one."""
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _line_of(text: str) -> int:
    return README[:README.index(text)].count("\n") + 1


def _commands(title: str) -> list[str]:
    """The commands of a section: its ``sh`` blocks' lines and its inline ``python -m restkit ...`` code."""
    section = _section(title)
    first, last = _line_of(section), _line_of(section) + section.count("\n")
    lines = [line.strip() for block in markdown_blocks(ROOT / "README.md")
             if block.language == "sh" and first <= block.line <= last for line in block.code.splitlines()]
    inline = [code for code in re.findall(r"`(python -m restkit [^`]*)`", section)
              if "SPEC" not in code and "<" not in code]  # usage lines (`python -m restkit SPEC [options]`)
    return [line for line in lines if line and not line.startswith("#")] + inline


QUICK_START = _commands("Quick start")
COMMAND_LINE = sorted(set(_commands("Ten lines") + _commands("The server")))
SUBCOMMANDS = [line for line in COMMAND_LINE if shlex.split(line)[3] in {"routes", "openapi", "check", "worker"}]
SERVING = [line for line in COMMAND_LINE if line not in SUBCOMMANDS]


def test_every_command_is_run() -> None:
    from tests.test_cli_introspection import README_COMMANDS

    assert len(QUICK_START) == 2 and QUICK_START[0].endswith("python -m examples.zoo --create")
    assert QUICK_START[1].endswith("python -m pytest")
    assert sorted(SUBCOMMANDS) == sorted(README_COMMANDS)  # run there
    assert SERVING and all(line.startswith("python -m restkit ") for line in SERVING), SERVING


def test_the_test_command_is_the_one_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert QUICK_START[1].replace("pip install ", "pip install -q ") in ci.splitlines()


def _with_port(args: list[str], port: int) -> list[str]:
    if "--port" in args:
        at = args.index("--port") + 1
        return [*args[:at], str(port), *args[at + 1:]]
    return [*args, "--port", str(port)]


def _stop(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Ctrl-C, then its exit status, standard output and standard error (killed after 15 s)."""
    process.send_signal(signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate(timeout=10)
        return -9, stdout, stderr + "\n[killed by the test: it did not exit in time]"
    return process.returncode, stdout, stderr


@pytest.mark.slow
def test_the_quick_start(tmp_path: Path) -> None:
    """A venv, ``pip install .``, the zoo with ``--create``: one request, Ctrl-C; then the test extras resolve."""
    source = copy_source_tree(tmp_path / "restkit")
    install, serve = QUICK_START[0].rsplit(" && ", 1)
    done = subprocess.run(install, shell=True, cwd=source, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    port = free_port()
    process = subprocess.Popen(_with_port(shlex.split(serve), port), cwd=source, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_until_listening(port, process)
        status, body = get(port, "/v1/zoos")
        assert status == 200 and isinstance(json.loads(body), list)
    finally:
        code, stdout, stderr = _stop(process)
    assert code == 0, stderr
    assert "zoo: write token: " in stdout
    assert (source / "zoo.db").exists()
    # The second line's install, resolved against the configured index in the environment the first one made.
    extras = shlex.split(QUICK_START[1].split(" && ")[1])
    assert extras[:2] == [".venv/bin/pip", "install"]
    dry = subprocess.run([*extras, "--dry-run", "-q"], cwd=source, capture_output=True, text=True, timeout=900)
    assert dry.returncode == 0, dry.stderr[-3000:]


MODULE_FACTORY = '''from restkit import App


def create_app():
    app = App()

    @app.get("/made")
    def made(request):
        return {"by": "create_app"}

    return app
'''


@pytest.fixture()
def app_dir(tmp_path: Path) -> Path:
    """``mymodule.py``: the Ten lines example as written; ``package/module.py``: a ``create_app()`` factory."""
    ten_lines = next(block.code for block in markdown_blocks(ROOT / "README.md") if "def show_zoo" in block.code)
    (tmp_path / "mymodule.py").write_text(ten_lines)
    (tmp_path / "package").mkdir()
    (tmp_path / "package" / "__init__.py").write_text("")
    (tmp_path / "package" / "module.py").write_text(MODULE_FACTORY)
    return tmp_path


def _tls(folder: Path, host: str) -> ssl.SSLContext:
    """cert.pem and key.pem for ``host`` in ``folder`` (as the command names them), and a client that trusts them."""
    trustme = pytest.importorskip("trustme", reason="trustme (the test extra) makes the throwaway certificate")
    authority = trustme.CA()
    certificate = authority.issue_cert(host, "localhost")
    certificate.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    certificate.private_key_pem.write_to_path(str(folder / "key.pem"))
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


@pytest.mark.parametrize("line", SERVING)
def test_the_command_line_serves(line: str, app_dir: Path) -> None:
    args = shlex.split(line)[3:]
    host = args[args.index("--host") + 1] if "--host" in args else "127.0.0.1"
    client_host = "::1" if host == "::" else host
    if ":" in client_host and (why := ipv6_loopback()):
        pytest.skip(why)
    context = _tls(app_dir, client_host) if "--certfile" in args else None
    port = free_port() if ":" not in client_host else _free_ipv6_port()
    process = subprocess.Popen([sys.executable, "-m", "restkit", *_with_port(args, port)], cwd=app_dir, env=cli_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_listening(port, process, host=client_host)
        if args[0].startswith("mymodule"):
            assert get(port, "/zoos/1", client_host, context=context) == (200, b'{"id":1,"name":"Beijing Zoo"}')
        else:
            assert get(port, "/made", client_host, context=context) == (200, b'{"by":"create_app"}')
    finally:
        code, _, stderr = _stop(process)
    assert code == 0 and "Traceback" not in stderr, stderr


def _free_ipv6_port() -> int:
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        return int(sock.getsockname()[1])


SHELL = [(block.where, block.code) for path in [ROOT / "README.md", *sorted(ROOT.glob("examples/*/README.md"))]
         for block in markdown_blocks(path) if block.language == "sh"]
SHELL += [(f"README.md:{_line_of(code)}", code) for code in re.findall(r"`(python -m restkit [^`]*)`", README)
          if "<" not in code and "[" not in code]


@pytest.mark.parametrize("where, script", SHELL, ids=[where for where, _ in SHELL])
def test_every_shell_command_parses(where: str, script: str) -> None:
    """Each sh block and inline command of the READMEs is valid shell (a factory spec unquoted is not)."""
    assert shell_syntax_error(script) == ""
    assert shell_syntax_error("python -m restkit mymodule:create_app()")  # the check sees the mistake


DEFAULTS = re.findall(r"`--([a-z-]+)` \((\d+(?:\.\d+)?)", README)  # "`--threads` (8)", "`--timeout` (30 s)"...


def test_the_option_defaults_the_readme_states_are_the_command_lines() -> None:
    from restkit.cli import _parser

    parser = _parser()
    assert {"threads", "timeout", "grace"} <= {name for name, _ in DEFAULTS}
    for name, stated in DEFAULTS:
        assert float(stated) == float(parser.get_default(name.replace("-", "_"))), f"--{name}"
    table = dict(re.findall(r"^\| `(\w+)` \| (\d+) \|", _section("The server"), re.M))
    assert table["threads"] == dict(DEFAULTS)["threads"]  # the server's options table says the same...
    assert int(table["threads"]) == inspect.signature(Server).parameters["threads"].default  # ...as serve() does
