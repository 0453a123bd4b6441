"""A rich progress bar behind fsspec's Callback interface, so library code never sees rich."""

from __future__ import annotations

import contextlib
import sys

from fsspec.callbacks import Callback, NoOpCallback
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from dvlite.cli.output import err


class RichCallback(Callback):
    """Each relative_update is one object of that many bytes."""

    def __init__(self, progress: Progress, label: str):
        super().__init__()
        self.progress = progress
        self.files = 0
        self.bytes_task = progress.add_task(label, total=None, files=0)

    def set_size(self, size):
        super().set_size(size)
        self.progress.update(self.bytes_task, total=size)

    def relative_update(self, inc=1):
        self.files += 1
        super().relative_update(inc)
        self.progress.update(self.bytes_task, advance=inc, files=self.files)


@contextlib.contextmanager
def transfer_progress(label: str, quiet: bool):
    """A progress bar on a terminal (files, bytes in KiB/MiB as every summary prints them, rate,
    ETA); nothing when stderr is not a terminal, with `quiet` (e.g. --json) or `-q`."""
    from dvlite.cli.output import Mode

    if quiet or Mode.quiet or not sys.stderr.isatty():
        yield NoOpCallback()
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[files]} files"),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        yield RichCallback(progress, label)

