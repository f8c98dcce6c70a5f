"""Sizes, ratios and transfer-time estimates, shown as terminal tables and written as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labship._fs import write_atomic

BITS_PER_BYTE = 8
# Tables never get wider than this: the narrowest common terminal, and CI log views wrap past it.
TABLE_WIDTH = 80


def transfer_seconds(size_bytes: int, uplink_mbps: float) -> float:
    """Seconds to move `size_bytes` over an uplink of `uplink_mbps` megabits (10^6 bits) a second."""
    return size_bytes * BITS_PER_BYTE / (uplink_mbps * 1_000_000)


def format_bytes(size_bytes: float) -> str:
    """A short human size in SI units: 951 MB, 35.2 GB."""
    value = float(size_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 100 else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """A short human duration: 0.4 s, 57 s, 5.0 min, 3.26 h."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write `payload` as indented JSON to `path` atomically (mode follows the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def transfer_change(before_bytes: int, after_bytes: int, uplink_mbps: float) -> str:
    """The upload time before -> after at `uplink_mbps`, e.g. `3.26 h -> 5.0 min`."""
    before = format_duration(transfer_seconds(before_bytes, uplink_mbps))
    return f"{before} -> {format_duration(transfer_seconds(after_bytes, uplink_mbps))}"


def _column_widths(headers: list[str], rows: list[list[str]]) -> list[int]:
    return [max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(headers)]


def _fits(widths: list[int], limit: int) -> bool:
    """Whether columns of these widths fit `limit` characters in rich's box (3 per column, +1)."""
    return sum(width + 3 for width in widths) + 1 <= limit


def print_table(title: str, headers: list[str], rows: list[list[str]], console: Any = None) -> None:
    """A rich table at most TABLE_WIDTH columns wide (numbers right-aligned: every column but the first).

    One line per row when that fits; else turned (one line per header, one column per row); else
    one two-column block per row. Nothing is folded or cut, whatever the terminal or log width."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
    limit = min(console.width, TABLE_WIDTH) if console.is_terminal else TABLE_WIDTH
    if not rows or _fits(_column_widths(headers, rows), limit):
        layouts = [(headers, rows, title)]
    else:
        turned_headers = [headers[0], *(row[0] for row in rows)]
        turned_rows = [[header, *(row[i] for row in rows)] for i, header in enumerate(headers[1:], start=1)]
        if _fits(_column_widths(turned_headers, turned_rows), limit):
            layouts = [(turned_headers, turned_rows, title)]
        else:
            layouts = [
                ([headers[0], row[0]], [[h, v] for h, v in zip(headers[1:], row[1:], strict=True)], title)
                for row in rows
            ]
            layouts[1:] = [(h, r, "") for h, r, _ in layouts[1:]]  # the title once, over the first block
    for layout_headers, layout_rows, layout_title in layouts:
        table = Table(title=layout_title or None, title_justify="left")
        for index, header in enumerate(layout_headers):
            table.add_column(header, justify="left" if index == 0 else "right")
        for row in layout_rows:
            table.add_row(*row)
        console.print(table, width=limit)
