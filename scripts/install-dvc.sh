#!/usr/bin/env bash
# Install the real DVC in a virtualenv of its own, for the DVC migration tests.
#
#   scripts/install-dvc.sh          # creates .venv-dvc/ in the checkout (or $DVLITE_DVC_VENV)
#
# DVC pins fsspec, s3fs and other packages that clash with dvlite's test environment, so it
# gets its own virtualenv. The tests find the binary through $DVLITE_DVC (default
# .venv-dvc/bin/dvc). Idempotent: when the pinned version is already there, nothing is done.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
DVC_VERSION=3.67.1
PYTHON=${PYTHON:-python3}
VENV=${DVLITE_DVC_VENV:-$PWD/.venv-dvc}

die() { echo "install-dvc.sh: error: $*" >&2; exit 1; }

if [[ -x $VENV/bin/dvc ]] && [[ $("$VENV/bin/python" -c \
        'import importlib.metadata as m; print(m.version("dvc"))' 2>/dev/null) == "$DVC_VERSION" ]]; then
    echo "==> dvc $DVC_VERSION is already installed in $VENV"
    exit 0
fi

command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null \
    || die "$PYTHON cannot create virtualenvs; on Debian: apt-get install python3-venv"
if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
    echo "==> creating $VENV with $("$PYTHON" -V 2>&1)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
echo "==> installing dvc[s3]==$DVC_VERSION into $VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "dvc[s3]==$DVC_VERSION"
"$VENV/bin/dvc" --version >/dev/null || die "dvc did not install into $VENV"
echo "==> dvc $("$VENV/bin/dvc" --version) in $VENV"
