"""Sizes, ratios and transfer-time estimates, shown as terminal tables and written as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labship._fs import write_atomic

BITS_PER_BYTE = 8


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


def print_table(title: str, headers: list[str], rows: list[list[str]], console: Any = None) -> None:
    """A rich table on the terminal (numbers right-aligned: every column but the first).

    On a terminal too narrow for one line per row, the table is turned: one line per header."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)  # logs and pipes: no squeezed columns
    needed = sum(max(len(header), *(len(row[i]) for row in rows)) + 3 for i, header in enumerate(headers))
    table = Table(title=title, title_justify="left")
    if needed <= console.width or not rows:
        for index, header in enumerate(headers):
            table.add_column(header, justify="left" if index == 0 else "right")
        for row in rows:
            table.add_row(*row)
    else:
        table.add_column(headers[0])
        for row in rows:
            table.add_column(row[0], justify="right")
        for index, header in enumerate(headers[1:], start=1):
            table.add_row(header, *(row[index] for row in rows))
    console.print(table)
