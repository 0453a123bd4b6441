"""Commands registered on the main app (filled in by its issue's work)."""

from __future__ import annotations


def register(app) -> None:
    pass
