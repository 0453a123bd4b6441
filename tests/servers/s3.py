"""An S3 server on 127.0.0.1 for the remote tests: moto's server, in this process.

Install: pip install 's3fs==2026.7.0' 'moto[server]'  (moto[server] brings flask/werkzeug; s3fs
brings aiobotocore, aiohttp and fsspec==2026.7.0).

Each `serve()` starts a new moto server on a free loopback port, creates an IAM user with an
access key and a fresh bucket, and then switches moto's IAM authentication on, so requests with
the wrong secret are refused (PermissionError from s3fs).

moto keeps its state (buckets, IAM users, the "require auth" switch) in module globals of this
process, not in the server object: every server of one process shares it. So state is reset when
the first server of the process starts and again when the last one stops, which gives each
sequential `serve()` an empty S3; pytest-xdist workers are separate processes and so never share
it. Two `serve()`s open at once in one process share one S3 (each still has its own bucket).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import pathlib
import socket
import threading
import urllib.request
import uuid
from collections.abc import Iterator

from .base import Server, ServerUnavailable

_lock = threading.Lock()
_open = 0  # servers open in this process
_auth_before = "inf"  # moto's INITIAL_NO_AUTH_ACTION_COUNT before the first server switched it

# Not an option (options must be str/int/bool): without it botocore's default ("legacy", 5
# attempts, random exponential back-off) takes about 6-15 s to give up on a refused connection;
# with it, well under a second. A test may pass it as fsspec.filesystem(..., config_kwargs=...)
# (give each filesystem its own copy: botocore rewrites the dict in place).
CONFIG_KWARGS = {"retries": {"max_attempts": 1}, "connect_timeout": 5, "read_timeout": 30}

_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


def _post(endpoint: str, path: str, data: bytes) -> dict:
    req = urllib.request.Request(
        endpoint + path, data=data, method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def _set_auth(endpoint: str, count: str) -> str:
    """Set moto's INITIAL_NO_AUTH_ACTION_COUNT ("0": every request is checked; "inf": none)."""
    return _post(endpoint, "/moto-api/reset-auth", count.encode())[
        "PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"
    ]


def _clients(endpoint: str):
    """botocore IAM and S3 clients for the set-up, blind to the user's AWS config and env."""
    import botocore.config
    import botocore.session

    # An AWS_PROFILE (ProfileNotFound) or config file of the machine must not leak in.
    session = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    session.set_config_variable("config_file", os.devnull)
    session.set_config_variable("credentials_file", os.devnull)
    config = botocore.config.Config(retries={"max_attempts": 0}, connect_timeout=5, read_timeout=30)
    kw = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "setup",
        "aws_secret_access_key": "setup",
        "config": config,
    }
    return session.create_client("iam", **kw), session.create_client("s3", **kw)


def _stop(server, host: str, port: int) -> None:
    """server.stop(), without waiting out werkzeug's 0.5 s poll: poke the socket to wake it."""
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    while stopper.is_alive():
        with contextlib.suppress(OSError):
            socket.create_connection((host, port), timeout=1).close()
        stopper.join(0.05)


@contextlib.contextmanager
def serve(workdir: pathlib.Path) -> Iterator[Server]:
    global _open, _auth_before
    try:
        import botocore  # noqa: F401
        import s3fs  # noqa: F401
        from moto.server import ThreadedMotoServer
    except ImportError as e:
        raise ServerUnavailable(
            f"S3 test server needs s3fs and moto[server] ({e}); "
            "pip install 's3fs==2026.7.0' 'moto[server]'"
        ) from e

    werkzeug_log = logging.getLogger("werkzeug")  # moto's server logs every request at INFO
    if werkzeug_log.level == logging.NOTSET:
        werkzeug_log.setLevel(logging.WARNING)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()  # returns once the socket listens
    host, port = server.get_host_and_port()
    counted = False
    try:
        endpoint = f"http://{host}:{port}"
        bucket = f"dvlite-test-{uuid.uuid4().hex[:16]}"
        user = f"dvlite-{uuid.uuid4().hex[:12]}"
        with _lock:
            if _open == 0:
                _post(endpoint, "/moto-api/reset", b"")  # an empty S3 (and IAM)
            previous = _set_auth(endpoint, "inf")  # set-up calls are unchecked
            if _open == 0:
                _auth_before = previous
            _open += 1
            counted = True
            iam, s3 = _clients(endpoint)
            try:
                iam.create_user(UserName=user)
                iam.put_user_policy(
                    UserName=user, PolicyName="s3-all", PolicyDocument=json.dumps(_POLICY)
                )
                access = iam.create_access_key(UserName=user)["AccessKey"]
                s3.create_bucket(Bucket=bucket)  # us-east-1: no LocationConstraint
            finally:
                iam.close()
                s3.close()
                _set_auth(endpoint, "0")  # from now on every request must be signed right
        key, secret = access["AccessKeyId"], access["SecretAccessKey"]
        options = {"endpoint_url": endpoint, "key": key, "secret": secret, "anon": False}
        yield Server(
            name="s3",
            url=f"s3://{bucket}/store",
            options=options,
            bad_options={**options, "secret": "wrong-" + secret},
            extra={
                "endpoint": endpoint,
                "port": port,
                "bucket": bucket,
                "config_kwargs": copy.deepcopy(CONFIG_KWARGS),
            },
        )
    finally:
        try:
            with _lock:
                if counted:
                    _open -= 1
                    if _open == 0:
                        _set_auth(endpoint, _auth_before)
                        _post(endpoint, "/moto-api/reset", b"")
        finally:
            _stop(server, host, port)
