"""Tables inside tracked files: formats, schema and row diffs, statistics, contracts, drift.

pyarrow is imported by the modules of this package when they are used, never by `dvlite`
itself, so commands that do not read tables start without it.
"""
