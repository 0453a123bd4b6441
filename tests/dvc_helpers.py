"""The real DVC for the migration tests: where it is, how to run it offline, `dvlite migrate`.

DVC lives in its own virtualenv (scripts/install-dvc.sh), found through $DVLITE_DVC (default
.venv-dvc/bin/dvc in the checkout). Its analytics and update checks are switched off, so it
sends nothing anywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import GIT_ENV

ROOT = Path(__file__).resolve().parent.parent
DVC = os.environ.get("DVLITE_DVC") or str(ROOT / ".venv-dvc" / "bin" / "dvc")
HAVE_DVC = os.access(DVC, os.X_OK)
if not HAVE_DVC and os.environ.get("DVLITE_REQUIRE_DVC"):  # scripts/test.sh: never skip these
    raise RuntimeError(f"DVLITE_REQUIRE_DVC is set but there is no dvc at {DVC}")
requires_dvc = pytest.mark.skipif(
    not HAVE_DVC, reason=f"the real dvc is not installed at {DVC}: run scripts/install-dvc.sh "
                         "(or set DVLITE_DVC)")


_HOME = Path(tempfile.mkdtemp(prefix="dvlite-dvc-home-"))


def dvc_env() -> dict:
    config_dir = _HOME / "config"
    if not (config_dir / "config").exists():
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "config").write_text("[core]\n    analytics = false\n    check_update = false\n")
    return {**os.environ, **GIT_ENV, "DVC_NO_ANALYTICS": "1", "DVC_STUDIO_OFFLINE": "1",
            "DVC_GLOBAL_CONFIG_DIR": str(config_dir), "DVC_SYSTEM_CONFIG_DIR": str(config_dir),
            "DVC_SITE_CACHE_DIR": str(_HOME / "site"), "DVC_UPDATER_ENDPOINT": "http://127.0.0.1:9/"}


def dvc(cwd, *args, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real `dvc ARGS...` in `cwd`, offline."""
    proc = subprocess.run([DVC, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env=dvc_env(), check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(map(str, args))} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def migrate(cwd, *args, check: bool = True) -> subprocess.CompletedProcess:
    """`dvlite migrate ARGS...` through the real CLI entry point, in a subprocess."""
    proc = subprocess.run([sys.executable, "-m", "dvlite", "migrate", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, **GIT_ENV},
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"dvlite migrate {' '.join(map(str, args))} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc

