"""What a test-server fixture hands to the remote tests."""

from __future__ import annotations

from dataclasses import dataclass, field


class ServerUnavailable(Exception):
    """The server software is not installed here; the test is skipped with this reason."""


@dataclass
class Server:
    name: str  # backend name, e.g. "s3"
    url: str  # an empty location on the server, e.g. "s3://bucket/store"
    options: dict = field(default_factory=dict)  # fsspec storage options (str/int/bool values)
    bad_options: dict | None = None  # the same with wrong credentials, None if not checkable
    extra: dict = field(default_factory=dict)  # anything else a test may need (ports, paths)
