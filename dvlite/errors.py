"""One error root for everything dvlite raises on purpose.

Each error carries the exit code the CLI uses and an optional hint. Exit codes:
  1  the operation failed (an I/O error, a refused write, a failed stage)
  2  bad input: usage, paths, malformed files
  3  the repository is locked by another process
  4  integrity: corrupt or missing objects, unsafe paths in data
  5  a remote failed: unreachable, access denied, no such bucket
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """`text` with control characters (newlines, terminal escapes from a hostile file name)
    shown escaped, so an error stays one line and cannot restyle the terminal."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class DvliteError(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        message = one_line(message)
        super().__init__(message)
        self.message = message
        self.hint = None if hint is None else one_line(hint)


class NotARepoError(DvliteError):
    exit_code = 2


class BadInputError(DvliteError):
    """A path, argument or option the user gave cannot be used."""

    exit_code = 2


class FormatError(DvliteError):
    """A file dvlite reads (pointer, manifest, config) is malformed."""

    exit_code = 2


class LockError(DvliteError):
    exit_code = 3


class IntegrityError(DvliteError):
    """An object's bytes do not match its digest, or an object is missing."""

    exit_code = 4


class ChangesWouldBeLostError(DvliteError):
    """A command refused to overwrite workspace changes that are not in the cache."""

    exit_code = 1

    def __init__(self, message: str, paths: list[str], hint: str | None = None):
        super().__init__(message, hint)
        self.paths = paths


class RemoteError(DvliteError):
    """A remote refused or could not be reached; `transient` failures are worth retrying."""

    exit_code = 5

    def __init__(self, message: str, hint: str | None = None, transient: bool = False):
        super().__init__(message, hint)
        self.transient = transient


class UnsafePathError(IntegrityError):
    """A path read from data (pointer, manifest, lock, record, listing) would leave its place."""


class StageFailed(DvliteError):
    """A stage's command failed, or did not produce a declared out."""
