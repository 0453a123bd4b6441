"""A read-only HTTP server on 127.0.0.1 for the remote tests: the standard library's http.server.

Install: pip install aiohttp  (fsspec's HTTPFileSystem needs it; the server is stdlib only).

`serve(workdir)` serves the directory `workdir/"www"` on a free loopback port, in a thread of
this process. `url` is `http://127.0.0.1:PORT/store` and `extra["root"]` the local directory
served there: a test fills it directly (or by pushing to a local remote at that path), then
reads through fsspec. The server only answers GET/HEAD: writes (PUT) get "501 Unsupported
method", so fsspec's pipe_file raises aiohttp.ClientResponseError, and rm/mv raise
NotImplementedError in fsspec itself. There is no authentication, so `bad_options` is None.

Unlike Python 3.11's SimpleHTTPRequestHandler, the handler answers a single `Range: bytes=...`
with 206 and the slice, as any real file server does: fsspec's `cat_file(url, start, end)` sends a
Range header and returns whatever body comes back, so a server that ignores Range would make
it return the whole file.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import os
import pathlib
import re
import shutil
import threading
import urllib.request
from collections.abc import Iterator

from .base import Server, ServerUnavailable

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler, quiet, with single byte-range support."""

    def log_message(self, format, *args):
        pass

    def send_head(self):
        rng = self.headers.get("Range")
        path = self.translate_path(self.path)
        m = _RANGE.fullmatch(rng.strip()) if rng else None
        if m is None or m.groups() == ("", "") or not os.path.isfile(path):
            return super().send_head()  # no/unsupported Range, a directory, or a 404
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                size = st.st_size
                first, last = m.groups()
                if first == "":  # the last N bytes
                    start, end = max(size - int(last), 0), size - 1
                else:
                    start = int(first)
                    end = min(int(last), size - 1) if last else size - 1
                f.seek(start)
                body = f.read(max(end - start + 1, 0))
        except OSError:
            self.send_error(404, "File not found")
            return None
        if start >= size or start > end:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Last-Modified", self.date_time_string(st.st_mtime))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(body)


@contextlib.contextmanager
def serve(workdir: pathlib.Path) -> Iterator[Server]:
    try:
        import aiohttp  # noqa: F401 - fsspec's HTTPFileSystem needs it
    except ImportError as e:
        raise ServerUnavailable(
            f"fsspec's HTTP filesystem needs aiohttp ({e}); pip install aiohttp"
        ) from e

    www = pathlib.Path(workdir) / "www"
    created = not www.exists()
    root = www / "store"
    root.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_Handler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.05,), name="test-http-server", daemon=True
    )
    thread.start()
    try:
        port = httpd.server_address[1]
        url = f"http://127.0.0.1:{port}/store"
        with urllib.request.urlopen(url + "/", timeout=10) as r:  # answers?
            r.read()
        yield Server(
            name="http",
            url=url,
            options={},
            bad_options=None,  # http.server has no authentication to get wrong
            extra={"root": str(root), "docroot": str(www), "port": port},
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
        if created:
            shutil.rmtree(www, ignore_errors=True)
