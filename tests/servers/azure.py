"""A loopback Azure Blob Storage server (Azurite) for the remote tests.

Azurite comes from npm (``npm install -g azurite@3.35.0``; 3.35 is the last release that runs on
Node 20) and gives the ``azurite-blob`` command; the fsspec backend is adlfs (``az://``,
``abfs://``). Azurite listens on port 0 and prints the port it got, so there is no port race
between pytest-xdist workers. It checks Shared Key signatures (also in ``--loose`` mode), so a
wrong account key is rejected with HTTP 403.

adlfs quirk: it passes no retry settings to the Azure SDK (fsspec/adlfs#502), so with the server
gone every call retries for about 80 s before raising ``azure.core.exceptions.ServiceRequestError``;
no storage option bounds that (see ``fast_fail``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from .base import Server, ServerUnavailable

CONTAINER = "dvlite-test"
START_TIMEOUT = 30.0
# Azurite's well-known development account (public, documented by Microsoft).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
# Same length and valid base64, different bytes: signatures made with it do not match.
WRONG_KEY = "A" * 86 + "=="

_LISTENS = re.compile(r"successfully listens on http://127\.0\.0\.1:(\d+)")


def _binary() -> str:
    found = shutil.which("azurite-blob")
    if not found:
        raise ServerUnavailable("azurite-blob not found (npm install -g azurite@3.35.0)")
    return found


def connection_string(port: int, key: str = ACCOUNT_KEY) -> str:
    return (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={ACCOUNT_NAME};AccountKey={key};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};"
    )


def fast_fail(fs) -> None:
    """Give an adlfs filesystem a service client that does not retry (tests of refused
    connections); adlfs has no option for it."""
    from azure.storage.blob.aio import BlobServiceClient

    fs.service_client = BlobServiceClient.from_connection_string(
        fs.connection_string, retry_total=0
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _create_container(port: int) -> None:
    try:
        from azure.storage.blob import BlobServiceClient
    except ImportError as e:  # adlfs brings azure-storage-blob
        raise ServerUnavailable(f"azure-storage-blob not installed (pip install adlfs): {e}")
    client = BlobServiceClient.from_connection_string(connection_string(port), retry_total=0)
    with client:
        client.create_container(CONTAINER)


@contextlib.contextmanager
def serve(workdir: Path) -> Iterator[Server]:
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    binary = _binary()
    log = workdir / "azurite.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURITE_")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                "--blobHost", "127.0.0.1",
                "--blobPort", "0",
                "--inMemoryPersistence",  # nothing on disk (cannot be combined with --location)
                "--extentMemoryLimit", "1024",  # MB
                "--skipApiVersionCheck",
                "--loose",
                "--silent",  # no access log
                "--disableTelemetry",
            ],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        port = None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            m = _LISTENS.search(log.read_text(errors="replace"))
            if m:
                port = int(m.group(1))
                break
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        if port is None:
            raise RuntimeError(f"azurite did not start:\n{log.read_text(errors='replace')}")
        _create_container(port)
        yield Server(
            name="azure",
            url=f"az://{CONTAINER}/store",
            options={"connection_string": connection_string(port)},
            bad_options={"connection_string": connection_string(port, WRONG_KEY)},
            extra={
                "port": port,
                "account_name": ACCOUNT_NAME,
                "account_key": ACCOUNT_KEY,
                "blob_endpoint": f"http://127.0.0.1:{port}/{ACCOUNT_NAME}",
                "container": CONTAINER,
                "log": str(log),
            },
        )
    finally:
        _stop(proc)
