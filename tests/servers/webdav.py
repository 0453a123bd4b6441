"""A loopback WebDAV server (wsgidav on cheroot, in-process) for the remote tests.

fsspec backend: webdav4 (protocol "webdav"). The server serves `<workdir>/webdav-root`
over plain HTTP on 127.0.0.1 with HTTP basic auth for one user. The store location is
the collection `store` under it, which exists and is empty when `serve` yields.

    url      = "webdav://store"        (paths are relative to base_url, no leading "/")
    options  = {"base_url": "http://127.0.0.1:PORT", "user": "...", "password": "..."}

`options` is the INI form (str values only). webdav4's WebdavFileSystem takes
credentials only as `auth=(user, password)` (a tuple, or an httpx.Auth object):
a list or a "user:password" string raises TypeError. `fsspec_options(options)` turns
the INI form into the keyword arguments for `fsspec.filesystem("webdav", ...)`.

Do not put the credentials in base_url's userinfo (http://user:pw@host): httpx does
send them as basic auth, but webdav4 copies the userinfo into the Destination header of
COPY/MOVE, and wsgidav then answers 502 ("Source and destination must have the same
host name"), so cp_file/mv fail (after webdav4 retried the 502 for ~3 s).
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import socket
import threading
import time
from collections.abc import Iterator

from .base import Server, ServerUnavailable

USER = "dvlite"
PASSWORD = "dvlite-secret"


def fsspec_options(options: dict) -> dict:
    """INI-style options (user/password strings) -> WebdavFileSystem keyword arguments."""
    kwargs = dict(options)
    user = kwargs.pop("user", None)
    password = kwargs.pop("password", None)
    if user is not None or password is not None:
        kwargs["auth"] = (user or "", password or "")
    return kwargs


def _wait_until_answering(host: str, port: int, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5) as sock:
                sock.sendall(b"OPTIONS / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(16).startswith(b"HTTP/1."):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"wsgidav on {host}:{port} did not answer")
        time.sleep(0.02)


@contextlib.contextmanager
def serve(workdir: pathlib.Path) -> Iterator[Server]:
    try:
        import webdav4.fsspec  # noqa: F401  (the fsspec backend the tests use)
        from cheroot import wsgi
        from wsgidav.wsgidav_app import WsgiDAVApp
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ServerUnavailable(
            f"WebDAV test server needs `pip install wsgidav cheroot webdav4` ({exc})"
        ) from exc

    root = pathlib.Path(workdir) / "webdav-root"
    (root / "store").mkdir(parents=True, exist_ok=False)

    host = "127.0.0.1"
    config = {
        "host": host,
        "port": 0,
        "provider_mapping": {"/": str(root)},
        "http_authenticator": {
            "domain_controller": None,  # -> SimpleDomainController(simple_dc)
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
        },
        "simple_dc": {"user_mapping": {"*": {USER: {"password": PASSWORD}}}},
        "verbose": 0,
        "logging": {"enable": False},
        "dir_browser": {"enable": False},
        "lock_storage": True,  # in-memory locks
    }
    # wsgidav logs through the "wsgidav" logger (no handler in library mode); drop its
    # per-request INFO/WARNING chatter, keep real errors.
    logging.getLogger("wsgidav").setLevel(logging.ERROR)
    app = WsgiDAVApp(config)

    server = wsgi.Server(
        (host, 0),
        app,
        numthreads=16,
        server_name="dvlite-test-webdav",
        shutdown_timeout=1,
    )
    server.expiration_interval = 0.05  # the serve loop's poll: makes stop() fast
    server.prepare()  # binds the socket: port 0 -> a free port
    port = server.bind_addr[1]
    thread = threading.Thread(target=server.serve, name=f"webdav-{port}", daemon=True)
    thread.start()
    try:
        _wait_until_answering(host, port, time.monotonic() + 10)
        base = f"http://{host}:{port}"
        yield Server(
            name="webdav",
            url="webdav://store",
            options={"base_url": base, "user": USER, "password": PASSWORD},
            bad_options={"base_url": base, "user": USER, "password": "wrong-password"},
            extra={
                "host": host,
                "port": port,
                "root": root,
                # ready for fsspec.filesystem("webdav", **...): auth is a tuple here
                "fsspec_options": fsspec_options(
                    {"base_url": base, "user": USER, "password": PASSWORD}
                ),
                "fsspec_bad_options": fsspec_options(
                    {"base_url": base, "user": USER, "password": "wrong-password"}
                ),
            },
        )
    finally:
        server.stop()
        thread.join(timeout=5)
