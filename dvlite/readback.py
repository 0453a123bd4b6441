"""Copies made inside the kernel and read back while they are made: the reader (a hash, a
chunker) follows the copy in another thread, each byte read only once it is there, so copying
and reading overlap instead of following each other (big files in add, fetch and checkout).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

from dvlite.fsutil import copy_into

T = TypeVar("T")

SEGMENT = 16 << 20  # copy_and_read_back copies this much before the reader may go on


class _Progress:
    """How far a copy has gone, for a reader following it in another thread."""

    def __init__(self) -> None:
        self.copied = 0
        self.finished = False
        self.failed = False  # the reader gave up: the copy stops too
        self.cond = threading.Condition()

    def advance(self, copied: int, finished: bool = False) -> None:
        with self.cond:
            self.copied, self.finished = copied, self.finished or finished
            self.cond.notify_all()

    def wait_past(self, offset: int) -> int:
        """Bytes copied once more than `offset` are, or the copy is over."""
        with self.cond:
            while self.copied <= offset and not self.finished:
                self.cond.wait()
            return self.copied


def copy_and_read_back(src_fd: int, dst_fd: int, consume: Callable[[Callable], T]) -> tuple[int, T]:
    """Copy `src_fd` to `dst_fd` inside the kernel (as `copy_into`) while `consume(readinto)`
    runs in another thread and reads the copy back, in order, each byte only once it has been
    copied: the copy and the reading overlap instead of following each other. `readinto(view)`
    fills a prefix of `view` with the next bytes of `dst_fd` and returns how many (0 at the
    end). Returns (bytes copied, what `consume` returned)."""
    return write_and_read_back(dst_fd, lambda advance: copy_into(src_fd, dst_fd, SEGMENT, advance),
                               consume)


def write_and_read_back(dst_fd: int, write: Callable[[Callable[[int], bool]], int],
                        consume: Callable[[Callable], T]) -> tuple[int, T]:
    """`write(advance)` fills `dst_fd` from its start, in order, calling `advance(n)` once the
    first n bytes are there (it returns False when the reader gave up: stop then), while
    `consume(readinto)` reads them back in another thread as in `copy_and_read_back`.
    Returns (what `write` returned, what `consume` returned)."""
    progress = _Progress()
    offset = 0

    def readinto(view) -> int:
        nonlocal offset
        available = progress.wait_past(offset)
        if available <= offset:
            return 0
        n = os.preadv(dst_fd, [view[:available - offset]], offset)
        offset += n
        return n

    def read_back() -> T:
        try:
            return consume(readinto)
        except BaseException:
            progress.failed = True
            raise

    def advance(copied: int) -> bool:
        progress.advance(copied)
        return not progress.failed

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        reader = pool.submit(read_back)
        try:
            written = write(advance)
        finally:
            progress.advance(progress.copied, finished=True)
        result = reader.result()
    return written, result


