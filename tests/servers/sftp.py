"""A loopback SFTP server (Debian's OpenSSH sshd, internal-sftp) for the remote tests.

Each `serve` starts its own `/usr/sbin/sshd -D -e -f <workdir>/sshd/sshd_config` on a free
127.0.0.1 port, with a freshly generated ed25519 host key and client key (all in workdir), key
authentication only, for the current user (root: `PermitRootLogin prohibit-password`). The store is
the empty directory `<workdir>/sftp-root/store`, named by its absolute path:

    url      = "sftp://127.0.0.1:PORT/<abs path>/store"
    options  = {"host": "127.0.0.1", "port": PORT, "username": USER,
                "client_keys": "<workdir>/sshd/client_key",
                "known_hosts": "<workdir>/sshd/known_hosts", "connect_timeout": 10,
                "keepalive_interval": 10}

fsspec backend: the `sshfs` package (asyncssh). Installing it re-registers BOTH protocols "sftp"
and "ssh" (fsspec entry points clobber the built-in paramiko `SFTPFileSystem`), so
`fsspec.filesystem("sftp", **options)` is sshfs. `known_hosts` is a generated OpenSSH known_hosts
file holding the server's host key (`[127.0.0.1]:PORT ssh-ed25519 ...`), so the host key is really
checked. (Host-key checking off is asyncssh's `known_hosts=None`, which sshfs already uses when the
option is absent; there is no str spelling of it -- a string is always a file name.)
`extra["paramiko_options"]` has the equivalent options for fsspec's built-in paramiko backend
(`fsspec.implementations.sftp.SFTPFileSystem`), kept for comparison tests.

Install (Debian 12, as root):
    apt-get update && apt-get install -y openssh-server
    pip install sshfs            # (paramiko for the built-in backend: pip install paramiko)
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

from .base import Server, ServerUnavailable

SSHD = "/usr/sbin/sshd"
HOST = "127.0.0.1"
PRIVSEP_DIR = "/run/sshd"
START_TIMEOUT = 10.0
# util-linux's setpriv (Debian: always installed) execs sshd with a parent-death signal, so a
# test process killed without cleanup (timeout, SIGKILL) does not leave the listener behind.
_SETPRIV = shutil.which("setpriv")
_DIE_WITH_PARENT = [_SETPRIV, "--pdeathsig", "TERM", "--"] if _SETPRIV else []


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _keygen(path: pathlib.Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )


def _answers_ssh(port: int) -> bool:
    """True once something on the port sends an SSH identification banner."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.settimeout(1.0)
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def _config(confdir: pathlib.Path, port: int, user: str) -> str:
    return "\n".join(
        [
            f"ListenAddress {HOST}",
            f"Port {port}",
            f"HostKey {confdir / 'host_key'}",
            f"PidFile {confdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {confdir / 'authorized_keys'}",
            f"AllowUsers {user}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "AllowAgentForwarding no",
            "PermitTTY no",
            "MaxSessions 32",
            "MaxStartups 64",
            "LoginGraceTime 15",
            "LogLevel ERROR",
            "Subsystem sftp internal-sftp",
            "",
        ]
    )


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (sshd's per-connection processes), from /proc."""
    kids = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _stop(proc: subprocess.Popen) -> None:
    """Stop the listener and drop the connections it accepted (they outlive it otherwise)."""
    if proc.poll() is not None:
        return
    # Drop the accepted connections too (each child of the listener is the monitor of one
    # connection; its session process exits with it): a stopped server must not keep serving.
    for pid in _children(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _start_sshd(confdir: pathlib.Path, user: str) -> tuple[subprocess.Popen, int]:
    """Start sshd on a free port; retry with another port if someone grabbed it meanwhile."""
    log_path = confdir / "sshd.log"
    last_error = ""
    for _attempt in range(5):
        port = _free_port()
        cfg = confdir / "sshd_config"
        cfg.write_text(_config(confdir, port, user))
        with open(log_path, "ab") as log:
            # -D: stay in the foreground (our child), -e: log to stderr (the log file).
            proc = subprocess.Popen(
                [*_DIE_WITH_PARENT, SSHD, "-D", "-e", "-f", str(cfg)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if _answers_ssh(port):
                return proc, port
            time.sleep(0.02)
        _stop(proc)
        last_error = log_path.read_text(errors="replace")[-2000:]
        if "Address already in use" not in last_error and "Cannot bind" not in last_error:
            break
    raise RuntimeError(f"sshd did not start on {HOST}; its log:\n{last_error}")


@contextlib.contextmanager
def serve(workdir: pathlib.Path) -> Iterator[Server]:
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh-keygen") is None:
        raise ServerUnavailable("SFTP test server needs OpenSSH: apt-get install -y openssh-server")
    try:
        import sshfs  # noqa: F401  (the fsspec backend the tests use)
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ServerUnavailable(f"SFTP tests need `pip install sshfs` ({exc})") from exc
    # sshd's privilege-separation directory; Debian's init script normally creates it.
    try:
        os.makedirs(PRIVSEP_DIR, mode=0o755, exist_ok=True)
    except OSError as exc:
        raise ServerUnavailable(f"sshd needs {PRIVSEP_DIR} ({exc})") from exc

    workdir = pathlib.Path(workdir).resolve()
    confdir = workdir / "sshd"
    confdir.mkdir()
    root = workdir / "sftp-root"
    store = root / "store"
    store.mkdir(parents=True)

    user = pwd.getpwuid(os.getuid()).pw_name
    _keygen(confdir / "host_key", "dvlite-test-host")
    _keygen(confdir / "client_key", "dvlite-test-client")
    _keygen(confdir / "wrong_key", "dvlite-test-unauthorized")
    shutil.copyfile(confdir / "client_key.pub", confdir / "authorized_keys")

    proc, port = _start_sshd(confdir, user)
    try:
        host_pub = (confdir / "host_key.pub").read_text().split()
        (confdir / "known_hosts").write_text(f"[{HOST}]:{port} {host_pub[0]} {host_pub[1]}\n")
        common = {"host": HOST, "port": port, "username": user}
        options = {
            **common,
            "client_keys": str(confdir / "client_key"),
            "known_hosts": str(confdir / "known_hosts"),  # the server's host key, checked
            "connect_timeout": 10,  # bounds TCP connect + SSH handshake + auth (seconds)
            "keepalive_interval": 10,  # a frozen server -> ConnectionLost after ~3 x 10 s
        }
        bad_options = {**options, "client_keys": str(confdir / "wrong_key")}
        paramiko_options = {
            **common,
            "key_filename": str(confdir / "client_key"),
            "look_for_keys": False,
            "allow_agent": False,
            "timeout": 10,
            "banner_timeout": 10,
            "auth_timeout": 10,
        }
        yield Server(
            name="sftp",
            url=f"sftp://{HOST}:{port}{store.as_posix()}",
            options=options,
            bad_options=bad_options,
            extra={
                "port": port,
                "host": HOST,
                "root": root,
                "store": store,
                "sshd_log": confdir / "sshd.log",
                "paramiko_options": paramiko_options,
                "paramiko_bad_options": {
                    **paramiko_options,
                    "key_filename": str(confdir / "wrong_key"),
                },
                "stop": lambda: _stop(proc),
            },
        )
    finally:
        _stop(proc)
