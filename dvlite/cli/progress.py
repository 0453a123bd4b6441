"""A rich progress bar behind the two methods of `dvlite.progress.Progress` (fsspec's Callback
has the same), so library code never sees rich. The bar appears only once the work has taken
about a second: quick commands print no bar at all."""

from __future__ import annotations

import contextlib
import os
import time

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from dvlite.cli.output import err, human_size

DELAY_S = 1.0  # DVLITE_PROGRESS_DELAY overrides it (0: at once)


def _delay() -> float:
    try:
        return max(0.0, float(os.environ.get("DVLITE_PROGRESS_DELAY", DELAY_S)))
    except ValueError:
        return DELAY_S


class _Rate(ProgressColumn):
    """Bytes per second in the units every summary prints (KiB/s, MiB/s; rich's own column
    says MB/s)."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("?" if speed is None else f"{human_size(int(speed))}/s", style="progress.data.speed")


class RichProgress:
    """Each relative_update is one file or object of that many bytes."""

    def __init__(self, progress: Progress, label: str, delay: float = DELAY_S):
        self.progress = progress
        self.files = 0
        self.size: int | None = None
        self.value = 0
        self.started = False
        self._show_at = time.monotonic() + delay
        self.task = progress.add_task(label, total=None, files=0)

    def set_size(self, size: int) -> None:
        self.size = size
        self.progress.update(self.task, total=size)
        self._maybe_start()

    def relative_update(self, inc: int = 1) -> None:
        self.files += 1
        self.value += inc
        self.progress.update(self.task, advance=inc, files=self.files)
        self._maybe_start()

    def _maybe_start(self) -> None:
        if not self.started and time.monotonic() >= self._show_at:
            self.started = True
            self.progress.start()


@contextlib.contextmanager
def work_progress(label: str):
    """A progress bar on stderr (files, bytes in KiB/MiB as every summary prints them, rate,
    ETA) once the work has run about a second. Whether to draw one at all is the caller's
    choice (cli/common.progress_bar: not with -q, --json or without a terminal)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[files]} files"),
        DownloadColumn(binary_units=True),
        _Rate(),
        TimeRemainingColumn(),
    )
    progress = Progress(*columns, console=err, transient=True)
    bar = RichProgress(progress, label, _delay())
    try:
        yield bar
    finally:
        if bar.started:
            progress.stop()
