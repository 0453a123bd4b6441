"""Shared fixtures: real git repositories and the real CLI in a subprocess."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

DVLITE = [sys.executable, "-m", "dvlite"]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}

# Remote tests talk only to loopback servers: no cloud settings of this machine may leak in.
for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION",
             "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
             "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_STORAGE_CONNECTION_STRING"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["DVLITE_CONFIG_GLOBAL"] = os.devnull  # this machine's dvlite settings stay out too
os.environ["DVLITE_CONFIG_SYSTEM"] = os.devnull
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"  # else every gcsfs call waits 60 s


def run(cwd, *args, check: bool = True, input: bytes | None = None, env: dict | None = None):
    """Run `dvlite ARGS...` in `cwd`; return the CompletedProcess (text output)."""
    proc = subprocess.run(
        [*DVLITE, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=input.decode() if input else None,
        env={**os.environ, **GIT_ENV, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"dvlite {' '.join(map(str, args))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def git(cwd, *args, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", *map(str, args)], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **GIT_ENV},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc.stdout


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def tree_digests(root: Path) -> dict[str, str]:
    """sha256 of every file under root, keyed by relative POSIX path (an independent check)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh git repository with `dvlite init` done and one initial commit."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    run(root, "init")
    git(root, "add", ".dvlite/config", ".dvlite/.gitignore")
    git(root, "commit", "-q", "-m", "init dvlite")
    return root
