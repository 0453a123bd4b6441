"""Remotes as DVC users configure them, through the real CLI: DVC's URL schemes against real
loopback servers, the `timeout` option bounding an unreachable endpoint on every backend (a
closed port and a server that accepts and never answers), and backend errors without the
backend's traceback."""

from __future__ import annotations

import contextlib
import shutil
import socket
import time
from pathlib import Path

import pytest
from conftest import run, write_tree
from remote_helpers import fresh_location, serve

AZURE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")


def _closed_port(contains: str = "") -> int:
    """A port nothing listens on (optionally one whose digits contain `contains`)."""
    candidates = [p for p in range(40000, 41000) if contains in str(p)] if contains else [0]
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


@contextlib.contextmanager
def _silent_server():
    """A TCP port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


def _remote(backend: str, port: int) -> tuple[str, dict]:
    host = f"127.0.0.1:{port}"
    return {
        "s3": ("s3://bucket/store", {"endpoint_url": f"http://{host}", "key": "k", "secret": "s"}),
        "gcs": ("gs://bucket/store", {"endpoint_url": f"http://{host}", "token": "anon"}),
        "azure": ("az://container/store", {"connection_string": (
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURE_KEY};"
            f"BlobEndpoint=http://{host}/devstoreaccount1;")}),
        "sftp": (f"sftp://{host}/srv/store", {"username": "nobody"}),
        "webdav": ("webdav://store", {"base_url": f"http://{host}"}),
        "http": (f"http://{host}/store", {}),
    }[backend]


def _configure(repo: Path, url: str, options: dict) -> None:
    run(repo, "remote", "add", "-d", "--force", "origin", url)
    for key, value in options.items():
        run(repo, "remote", "modify", "--local", "origin", key, str(value))


def _one_line_failure(proc, within: float, started: float) -> str:
    elapsed = time.monotonic() - started
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) <= 2 and lines[0].startswith("error: remote 'origin'"), proc.stderr
    assert elapsed < within, f"took {elapsed:.1f} s"
    return lines[0]


BACKENDS = ["s3", "gcs", "azure", "sftp", "webdav", "http"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("endpoint", ["closed-port", "silent-server"])
def test_timeout_bounds_an_unreachable_endpoint(repo: Path, backend: str, endpoint: str):
    """Without `timeout`, these take from 0.5 s (a refused connection over HTTP) to minutes (a
    silent server: botocore, gcsfs, the Azure SDK and asyncssh retry or wait)."""
    write_tree(repo, {"f.bin": b"payload"})
    run(repo, "add", "f.bin")
    with contextlib.ExitStack() as stack:
        port = _closed_port() if endpoint == "closed-port" else stack.enter_context(_silent_server())
        url, options = _remote(backend, port)
        _configure(repo, url, {**options, "timeout": 2})
        started = time.monotonic()
        proc = run(repo, "status", "--cloud", check=False, env={"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"})
        line = _one_line_failure(proc, 12, started)
    assert "cannot reach the server" in line or "no answer within 2 s" in line, line


def test_timeout_must_be_a_positive_number(repo: Path):
    run(repo, "remote", "add", "-d", "origin", "s3://bucket/x")
    for bad in ("soon", "0", "0.0"):
        proc = run(repo, "remote", "modify", "origin", "timeout", bad, check=False)
        assert proc.returncode == 2 and "timeout" in proc.stderr


def test_gcs_failure_shows_no_gcsfs_traceback(repo: Path):
    """gcsfs logs the failure of its last attempt with `logger.exception`, which Python printed
    (a traceback) before dvlite's one line; a server that answers 400 triggers it at once."""
    import http.server
    import threading

    class BadRequest(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            body = b'{"error": {"code": 400, "message": "refused by the test server"}}'
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BadRequest)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        write_tree(repo, {"f.bin": b"payload"})
        run(repo, "add", "f.bin")
        _configure(repo, "gs://bucket/store", {"endpoint_url": f"http://127.0.0.1:{server.server_port}",
                                               "token": "anon"})
        started = time.monotonic()
        proc = run(repo, "status", "--cloud", check=False, env={"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"})
        line = _one_line_failure(proc, 30, started)
        assert "refused by the test server" in line
        assert "_request non-retriable" not in proc.stderr
        verbose = run(repo, "-v", "status", "--cloud", check=False,
                      env={"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"})
        assert "Traceback" in verbose.stderr  # -v still shows it
    finally:
        server.shutdown()


def test_a_refused_connection_on_a_port_holding_401_is_not_access_denied(repo: Path):
    port = _closed_port("401")
    _configure(repo, f"http://127.0.0.1:{port}/store", {})
    write_tree(repo, {"f.bin": b"payload"})
    run(repo, "add", "f.bin")
    started = time.monotonic()
    proc = run(repo, "status", "--cloud", check=False)
    line = _one_line_failure(proc, 30, started)
    assert "cannot reach the server" in line and "access denied" not in line


@pytest.mark.parametrize("url", ["webdavs://127.0.0.1:{port}/remote.php/dav/files/alice",
                                 "https://127.0.0.1:{port}/store", "azure://container/store"])
def test_dvc_schemes_are_known(repo: Path, url: str):
    """A closed port answers every scheme the same way: the scheme itself is understood."""
    port = _closed_port()
    options = {"timeout": 2}
    if url.startswith("azure"):
        options.update(_remote("azure", port)[1])
    _configure(repo, url.format(port=port), options)
    write_tree(repo, {"f.bin": b"payload"})
    run(repo, "add", "f.bin")
    started = time.monotonic()
    proc = run(repo, "status", "--cloud", check=False)
    line = _one_line_failure(proc, 15, started)
    assert "unknown protocol" not in line and "not installed" not in line
    assert "cannot reach the server" in line or "no answer within" in line


def _dvc_style(server, loc) -> tuple[str, dict]:
    """The remote as a DVC config would name it."""
    if server.name == "azure":
        return "azure://" + loc.url.split("://", 1)[1], loc.options
    if server.name == "gcs":
        return "gcs://" + loc.url.split("://", 1)[1], loc.options
    if server.name == "sftp":
        return "ssh://" + loc.url.split("://", 1)[1], loc.options
    if server.name == "webdav":  # DVC's form: the server in the URL, no base_url option
        host = server.extra["host"], server.extra["port"]
        options = {k: v for k, v in loc.options.items() if k != "base_url"}
        return f"webdav://{host[0]}:{host[1]}/{loc.url.split('://', 1)[1]}", options
    raise AssertionError(server.name)


@pytest.mark.parametrize("backend", ["azure", "gcs", "sftp", "webdav"])
def test_dvc_url_schemes_push_and_pull(repo: Path, tmp_path: Path, backend: str):
    (tmp_path / "server").mkdir()
    with serve(backend, tmp_path / "server") as server:
        loc = fresh_location(server)
        url, options = _dvc_style(server, loc)
        _configure(repo, url, options)
        data = {"data/a.bin": b"a" * 3000, "data/b.bin": b"b" * 200, "model.bin": b"m" * 50_000}
        write_tree(repo, data)
        run(repo, "add", "data", "model.bin")
        env = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
        assert "pushed" in run(repo, "push", env=env).stdout
        for rel in data:
            (repo / rel).unlink()
        shutil.rmtree(repo / ".dvlite" / "cache")
        run(repo, "pull", env=env)
        for rel, content in data.items():
            assert (repo / rel).read_bytes() == content
        assert "in sync" in run(repo, "status", "--cloud", env=env).stdout
