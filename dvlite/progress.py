"""What a long operation reports as it goes: a total, then one update per file or object done.

fsspec's `Callback` has the same two methods, so transfers and local work (hashing, checkout,
fsck, gc) feed one kind of progress bar; the library never draws it.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def set_size(self, size: int) -> None:
        """The total bytes (or units) of the work, as far as known; may grow."""

    def relative_update(self, inc: int = 1) -> None:
        """One file or object done, of `inc` bytes."""


class _Silent:
    def set_size(self, size: int) -> None:
        pass

    def relative_update(self, inc: int = 1) -> None:
        pass


SILENT: Progress = _Silent()
