"""Table file formats: detection by name, opening a path or a seekable file, record batches.

Parquet, Arrow IPC (Feather v2, file or stream), CSV, TSV and JSON lines. Every read
error becomes one DvliteError naming the file and its format: a file whose content is
not the format its name says is a FormatError that says what the content looks like; a
Parquet or Arrow file that starts like one but cannot be read (truncated, corrupt pages)
is an IntegrityError.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Self

from dvlite.errors import BadInputError, DvliteError, FormatError, IntegrityError

FORMATS = ("parquet", "ipc", "csv", "tsv", "jsonl")
TITLES = {"parquet": "Parquet", "ipc": "Arrow IPC", "csv": "CSV", "tsv": "TSV", "jsonl": "JSON lines"}
EXTENSIONS = {
    ".parquet": "parquet", ".pq": "parquet",
    ".feather": "ipc", ".arrow": "ipc", ".ipc": "ipc", ".arrows": "ipc",
    ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
}
ALIASES = {"pq": "parquet", "feather": "ipc", "arrow": "ipc", "ndjson": "jsonl", "json": "jsonl"}
BATCH_ROWS = 65536
PARQUET_BUFFER = 1 << 20  # pages stream through a buffer: a row group is never read whole
TEXT_BLOCK = 4 << 20  # CSV and JSON are parsed (and their types inferred) in blocks of this size
MESSAGE_CAP = 160
_RAGGED = re.compile(r"Expected (\d+) columns, got (\d+): ?(.*)")

_MAGIC = [  # (prefix, what it is): enough to tell a user what they pointed at
    (b"PAR1", "Parquet"), (b"ARROW1", "Arrow IPC"), (b"\xff\xff\xff\xff", "an Arrow IPC stream"),
    (b"FEA1", "Feather version 1"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"), (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "gzip-compressed data"), (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ", "xz-compressed data"), (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (b"SQLite format 3", "an SQLite database"), (b"\x93NUMPY", "a NumPy array"),
    (b"\x89HDF", "an HDF5 file"), (b"\x7fELF", "an executable"),
]


def detect_format(name: str, override: str | None = None) -> str:
    """The format of a file, by its extension or by an explicit format name."""
    if override:
        fmt = ALIASES.get(override.lower(), override.lower())
        if fmt not in FORMATS:
            raise BadInputError(f"unknown table format {override!r}",
                                hint=f"use one of: {', '.join(FORMATS)}")
        return fmt
    ext = os.path.splitext(name)[1].lower()
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    raise BadInputError(
        f"{name}: not a table by its name (extension {ext or 'none'!r})",
        hint=f"name it {', '.join(sorted(EXTENSIONS))}, or pass --format ({', '.join(FORMATS)})",
    )


def sniff(head: bytes) -> str:
    """What the first bytes of a file look like, for messages."""
    if not head:
        return "an empty file"
    for prefix, what in _MAGIC:
        if head.startswith(prefix):
            return what
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            return "binary data"
        text = head[:exc.start].decode("utf-8")
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        return "JSON text"
    return "text"


@dataclass(frozen=True)
class TableSource:
    """A table to read: how to open its bytes, its format, and how messages name it.

    `opener` returns a new binary file object each call (seekable for Parquet and Arrow
    files); `path`, when set, is opened natively instead. `digest` names the content for
    the statistics cache. `verify` re-hashes a cached object: False means its bytes are
    corrupt (set for objects read from the cache, not for workspace files).
    """

    label: str
    format: str
    opener: Callable[[], BinaryIO]
    path: str | None = None
    digest: str | None = None
    verify: Callable[[], bool] | None = None

    @classmethod
    def from_path(cls, path: str, fmt: str | None = None, label: str | None = None,
                  digest: str | None = None) -> TableSource:
        return cls(label or path, detect_format(path, fmt), lambda: open(path, "rb"), path, digest)

    @classmethod
    def from_file(cls, f: BinaryIO, name: str, fmt: str | None = None,
                  label: str | None = None) -> TableSource:
        """A table in an open binary file (seekable), its format by `name`; never closed here."""
        start = f.tell()

        def reopen() -> BinaryIO:
            f.seek(start)
            return _Borrowed(f)

        return cls(label or name, detect_format(name, fmt), reopen)

    @property
    def title(self) -> str:
        return f"{self.label} ({TITLES[self.format]})"

    def corrupt_error(self) -> IntegrityError | None:
        """An IntegrityError when the source is a cache object whose bytes fail its digest."""
        if self.verify is None or self.verify():
            return None
        return IntegrityError(f"{self.label}: the cached object is corrupt (its bytes do not match "
                              "its digest)", hint="run `dvlite fsck --repair`, then fetch it again")

    def check_intact(self) -> None:
        """Re-hash a cache object before a whole-table read relies on it (a no-op for files)."""
        error = self.corrupt_error()
        if error is not None:
            raise error


class _Borrowed:
    """A caller's file object that our close() leaves open."""

    def __init__(self, f: BinaryIO):
        self._f = f

    def __getattr__(self, name: str):
        return getattr(self._f, name)

    def close(self) -> None:
        pass

    @property
    def closed(self) -> bool:
        return False


class _NestingGuard:
    """A JSON-lines file that refuses lines nested deeper than Python's json decoder goes.

    pyarrow's JSON parser recurses without a limit and crashes the process (SIGSEGV) on a
    line nested ~15,000 deep. Each chunk pyarrow reads is checked first: a line with more
    than MAX_OPENERS `[` and `{` (an upper bound of its depth) is decoded with `json`, which
    raises RecursionError instead of crashing.
    """

    MAX_OPENERS = 512

    def __init__(self, f: BinaryIO):
        self._f = f
        self._line = b""  # the unfinished line of the chunks read so far
        self.too_deep = False

    def __getattr__(self, name: str):
        return getattr(self._f, name)

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        lines = (self._line + data).split(b"\n")
        self._line = lines.pop()[-2 * TEXT_BLOCK:]  # longer lines fail in pyarrow anyway
        if not data:
            lines.append(self._line)
        for line in lines:
            if line.count(b"[") + line.count(b"{") > self.MAX_OPENERS and self._deep(line):
                self.too_deep = True
                raise ValueError("a JSON line is nested too deeply")
        return data

    @staticmethod
    def _deep(line: bytes) -> bool:
        import json

        try:
            json.loads(line)
        except RecursionError:
            return True
        except ValueError:
            pass  # not JSON: pyarrow says what is wrong with it
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= MESSAGE_CAP else text[:MESSAGE_CAP] + "..."


def _readable_errors() -> tuple[type[BaseException], ...]:
    import pyarrow as pa

    return (pa.ArrowException, OSError, ValueError, EOFError)


class TableReader:
    """An open table: its schema, its row count when the format knows it, its batches."""

    def __init__(self, source: TableSource):
        self.source = source
        self.num_rows: int | None = None
        self.estimated_bytes = 0
        self._files: list = []
        self._stream_read = False
        self._guards: list[_NestingGuard] = []
        try:
            self.schema = self._guard(self._open)
        except BaseException:
            self.close()
            raise

    # --- opening ----------------------------------------------------------------------
    def _raw(self):
        import pyarrow as pa

        if self.source.format == "jsonl":
            f = open(self.source.path, "rb") if self.source.path else self.source.opener()  # noqa: SIM115
            self._guards.append(_NestingGuard(f))
            raw = pa.PythonFile(self._guards[-1], mode="r")
        elif self.source.path:
            raw = pa.OSFile(self.source.path)
        else:
            raw = pa.PythonFile(self.source.opener(), mode="r")
        self._files.append(raw)
        return raw

    def _open(self):
        opener = getattr(self, f"_open_{self.source.format}", None) or self._open_text
        return opener()

    def _open_parquet(self):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(self._raw(), pre_buffer=False, buffer_size=PARQUET_BUFFER)
        meta = pf.metadata
        self.num_rows = meta.num_rows
        self.estimated_bytes = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        self._parquet = pf
        return pf.schema_arrow

    def _open_ipc(self):
        import pyarrow as pa

        raw = self._raw()
        self.estimated_bytes = raw.size()
        head = raw.read(8)
        raw.seek(0)
        if head.startswith(b"ARROW1"):
            self._ipc = pa.ipc.open_file(raw)
            self.num_rows = self._ipc.count_rows()  # from the batches' metadata, not their bodies
            return self._ipc.schema
        self._ipc = None
        self._stream = pa.ipc.open_stream(raw)
        return self._stream.schema

    def _open_text(self):
        raw = self._raw()
        try:
            self.estimated_bytes = raw.size()
        except (OSError, ValueError):  # a stream that cannot tell its size
            self.estimated_bytes = 0
        self._stream = self._text_reader(raw)
        return self._stream.schema

    def _text_reader(self, raw):
        if self.source.format == "jsonl":
            import pyarrow.json as pajson

            return pajson.open_json(raw, read_options=pajson.ReadOptions(block_size=TEXT_BLOCK))
        import pyarrow.csv as pacsv

        parse = pacsv.ParseOptions(delimiter="\t" if self.source.format == "tsv" else ",")
        return pacsv.open_csv(raw, read_options=pacsv.ReadOptions(block_size=TEXT_BLOCK),
                              parse_options=parse)

    # --- reading ----------------------------------------------------------------------
    def batches(self, columns: list[str] | None = None, batch_rows: int = BATCH_ROWS) -> Iterator:
        """The table's record batches in order, only `columns` when given."""
        missing = [c for c in columns or [] if c not in self.schema.names]
        if missing:
            raise BadInputError(f"{self.source.label}: no column {missing[0]!r}")
        return self._guarded_iter(columns, batch_rows)

    def _guarded_iter(self, columns, batch_rows) -> Iterator:
        it = self._guard(lambda: self._iter(columns, batch_rows))
        while True:
            batch = self._guard(lambda: next(it, None))
            if batch is None:
                return
            yield batch

    def _iter(self, columns, batch_rows) -> Iterator:
        fmt = self.source.format
        if fmt == "parquet":
            return self._parquet.iter_batches(batch_size=batch_rows, columns=columns)
        if fmt == "ipc" and self._ipc is not None:
            reader = self._ipc
            gen = (reader.get_batch(i) for i in range(reader.num_record_batches))
        else:
            gen = self._restart_stream()
        return (b.select(columns) if columns is not None else b for b in gen)

    def _restart_stream(self) -> Iterator:
        """A streaming format reads once; a second pass opens the source again."""
        if not self._stream_read:
            self._stream_read = True
            stream = self._stream
        elif self.source.format == "ipc":
            import pyarrow as pa

            stream = pa.ipc.open_stream(self._raw())
        else:
            stream = self._text_reader(self._raw())
        return iter(stream)

    def head(self, n: int):
        """The first `n` rows as a pyarrow Table."""
        import pyarrow as pa

        taken, got = [], 0
        for batch in self.batches(batch_rows=max(1, min(n, BATCH_ROWS))):
            if got >= n:
                break
            taken.append(batch.slice(0, n - got))
            got += taken[-1].num_rows
        return pa.Table.from_batches(taken, schema=self.schema)

    # --- errors -----------------------------------------------------------------------
    def _guard(self, fn):
        import pyarrow as pa

        try:
            return fn()
        except DvliteError:
            raise
        except (FileNotFoundError, PermissionError, IsADirectoryError):
            raise
        except pa.ArrowNotImplementedError as exc:
            raise FormatError(f"{self.source.title}: cannot be read: {_first_line(exc)}") from exc
        except MemoryError as exc:
            raise FormatError(f"{self.source.title}: too large to read ({_first_line(exc)})") from exc
        except _readable_errors() as exc:
            raise self._explain(exc) from exc

    def _explain(self, exc: BaseException) -> DvliteError:
        src = self.source
        if any(g.too_deep for g in self._guards):
            return FormatError(f"{src.title}: a line is nested too deeply to read")
        corrupt = src.corrupt_error()
        if corrupt is not None:
            return corrupt
        looks = sniff(self._head())
        # pyarrow's own words; an invalid_row_handler would be called with the row decoded as
        # UTF-8, and a row that is not UTF-8 prints an "Exception ignored" traceback instead
        ragged = _RAGGED.search(str(exc))
        if ragged and src.format in ("csv", "tsv") and looks in ("text", "JSON text"):
            expected, got, text = ragged.groups()
            text = text if len(text) <= 60 else text[:60] + "..."
            return FormatError(f"{src.title}: ragged row: expected {expected} columns, got {got}: {text!r}")
        binary = {"parquet": "Parquet", "ipc": "Arrow IPC"}.get(src.format)
        if binary and looks in (binary, "an Arrow IPC stream"):
            return IntegrityError(f"{src.title}: truncated or corrupt: {_first_line(exc)}",
                                  hint="the file was cut short or damaged; restore it from a good copy")
        if looks == "Feather version 1":
            return FormatError(f"{src.title}: Feather version 1 is not supported",
                               hint="rewrite it with pyarrow.feather.write_feather (version 2)")
        if binary or looks not in ("text", "JSON text"):
            return FormatError(f"{src.label}: not a table in {TITLES[src.format]} format "
                               f"(its content looks like {looks})")
        return FormatError(f"{src.title}: {_first_line(exc)}")

    def _head(self) -> bytes:
        try:
            if self.source.path:
                with open(self.source.path, "rb") as f:
                    return f.read(64)
            f = self.source.opener()
            try:
                return f.read(64)
            finally:
                f.close()
        except OSError:
            return b""

    # --- closing ----------------------------------------------------------------------
    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_table(source: TableSource) -> TableReader:
    """Open a table for reading; use it as a context manager."""
    return TableReader(source)
