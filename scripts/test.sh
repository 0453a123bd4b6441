#!/usr/bin/env bash
# Run dvlite's test suite in a project-local virtualenv.
#
#   scripts/test.sh                 # the whole suite, 2 workers
#   scripts/test.sh -k checkout -x  # extra arguments go to pytest
#
# Works from any directory. Creates .venv/ (with python3, or $PYTHON) when it is missing,
# installs dvlite editable with its test extras, then runs pytest. Exits non-zero on any
# failure, including "no tests collected" (pytest exit code 5).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
VENV=$ROOT/.venv

die() { echo "test.sh: error: $*" >&2; exit 1; }

# --- System packages (Debian/Ubuntu) ------------------------------------------------------
# Beyond python3 (>= 3.10), python3-venv and git, the tests need:
#   openssh-server  the SFTP remote tests run a real sshd on loopback
#   xfsprogs        the reflink test loop-mounts an XFS image (as root; skipped otherwise)
#   chromium        the plots tests render the HTML report in a real headless browser
# Missing ones are installed with apt-get (as root, or through sudo).
APT_PACKAGES=(openssh-server xfsprogs chromium)

if ((${#APT_PACKAGES[@]})); then
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        command -v apt-get >/dev/null || die "need packages ${missing[*]} but apt-get is not available"
        SUDO=()
        [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
        echo "==> installing system packages: ${missing[*]}"
        "${SUDO[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
fi
# --- end of system packages ---------------------------------------------------------------

# --- npm packages: azurite (the Azure Blob emulator; 3.35 is the last release for Node 20) ----
if ! command -v azurite-blob >/dev/null; then
    if command -v npm >/dev/null; then
        echo "==> installing azurite@3.35.0 from npm"
        npm install -g --silent --no-audit --no-fund azurite@3.35.0 >/dev/null \
            || echo "test.sh: warning: azurite did not install; Azure tests will be skipped" >&2
    else
        echo "test.sh: warning: npm not found; Azure tests will be skipped" >&2
    fi
fi

command -v git >/dev/null || die "git is not installed (the tests drive real git repositories); on Debian: apt-get install git"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found; on Debian: apt-get install python3 python3-venv"

# --- Virtualenv ------------------------------------------------------------------------
if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || die "dvlite needs Python >= 3.10; $PYTHON is $("$PYTHON" -V 2>&1)"
    "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null \
        || die "$PYTHON cannot create virtualenvs; on Debian: apt-get install python3-venv"
    echo "==> creating $VENV with $("$PYTHON" -V 2>&1)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
echo "==> installing dvlite and its test dependencies into .venv"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# constraints.txt pins the whole test environment to a set known to resolve: moto and s3fs
# both reach for botocore, and an unpinned resolve backtracks into packages for Python 2.
"$VENV/bin/python" -m pip install --quiet -e '.[test]' -c scripts/constraints.txt

# --- The real DVC, in a virtualenv of its own (its pins clash with the test environment) ---
# The migration tests and the side-by-side benchmark smoke tests drive it; here they must run,
# never be skipped for want of it.
bash scripts/install-dvc.sh
export DVLITE_DVC=${DVLITE_DVC:-$ROOT/.venv-dvc/bin/dvc}
export DVLITE_BENCH_DVC=${DVLITE_BENCH_DVC:-$DVLITE_DVC}
export DVLITE_REQUIRE_DVC=1

# --- Tests ---------------------------------------------------------------------------
echo "==> python -m pytest -n 2 -q tests $*"
status=0
"$VENV/bin/python" -m pytest -n 2 -q tests "$@" || status=$?
case $status in
    0) echo "==> tests passed" ;;
    5) echo "test.sh: error: pytest collected no tests (exit 5); treating that as a failure" >&2 ;;
    *) echo "test.sh: error: pytest exited with status $status" >&2 ;;
esac
exit "$status"
