"""The exceptions of compress: one a user sees, one the pipeline uses to widen the dataset schema."""

from __future__ import annotations

import pyarrow as pa

from labship.errors import LabshipError


class CompressError(LabshipError):
    """A source cannot be converted; the message names the file, the line and what to do."""


class Promotion(Exception):
    """A value does not fit an inferred type: the dataset schema must widen these columns."""

    def __init__(self, changes: dict[str, pa.DataType]) -> None:
        super().__init__(", ".join(f"{name} -> {data_type}" for name, data_type in changes.items()))
        self.changes = changes


def printable(text: str, limit: int = 80) -> str:
    """Source text made safe to echo on a terminal: control characters escaped, at most `limit` chars."""
    shortened = text[:limit]
    return "".join(
        char if char.isprintable() or char == " " else char.encode("unicode_escape").decode("ascii")
        for char in shortened
    )
