"""What a run tells the user: per-dataset totals (terminal table and JSON report) and progress."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labship.report import format_bytes, format_duration, print_table, transfer_change, transfer_seconds


@dataclass
class DatasetReport:
    """Totals of one dataset's conversion, for the terminal table and the JSON report."""

    name: str
    source: str
    target: str
    files: int = 0
    converted: int = 0
    skipped: int = 0
    rows: int = 0
    rejected_rows: int = 0
    csv_bytes: int = 0
    parquet_bytes: int = 0
    columns_kept: int = 0
    columns_dropped: int = 0
    seconds: float = 0.0
    converted_csv_bytes: int = 0
    uplink_mbps: float = 24.5
    rejected_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialects: dict[str, dict[str, Any]] = field(default_factory=dict)  # per source converted this run
    workers: dict[str, dict[str, float]] = field(default_factory=dict)  # cluster runs: files/bytes/seconds

    @property
    def ratio(self) -> float:
        """CSV bytes per Parquet byte."""
        return self.csv_bytes / self.parquet_bytes if self.parquet_bytes else 0.0

    @property
    def megabytes_per_second(self) -> float:
        """Converted CSV megabytes per second of this run."""
        return self.converted_csv_bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        """The JSON report's entry for this dataset."""
        payload = asdict(self)
        payload.update(
            ratio=round(self.ratio, 3),
            megabytes_per_second=round(self.megabytes_per_second, 1),
            upload_seconds_csv=round(transfer_seconds(self.csv_bytes, self.uplink_mbps), 1),
            upload_seconds_parquet=round(transfer_seconds(self.parquet_bytes, self.uplink_mbps), 1),
            seconds=round(self.seconds, 3),
        )
        return payload


class ProgressHook:
    """Receives progress in source bytes; the task shows it as a bar (the default shows nothing)."""

    def start(self, description: str, total_bytes: int) -> None:
        """A dataset starts with this many source bytes to convert."""

    def advance(self, count: int) -> None:
        """`count` more source bytes are done."""

    def stop(self) -> None:
        """The dataset is done."""


class RichProgress(ProgressHook):
    """A progress bar in bytes on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task: Any = None

    def start(self, description: str, total_bytes: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task(f"compress {description}", total=total_bytes)

    def advance(self, count: int) -> None:
        self.progress.advance(self.task, count)

    def stop(self) -> None:
        self.progress.stop()


REPORT_HEADERS = [
    "dataset",
    "files",
    "converted",
    "rows",
    "rejected",
    "CSV",
    "Parquet",
    "ratio",
    "columns kept/dropped",
    "time",
    "MB/s",
    "upload",
]


def report_rows(reports: list[DatasetReport]) -> list[list[str]]:
    """One terminal-table row per dataset."""
    return [
        [
            report.name,
            str(report.files),
            str(report.converted),
            f"{report.rows:,}",
            f"{report.rejected_rows:,}",
            format_bytes(report.csv_bytes),
            format_bytes(report.parquet_bytes),
            f"{report.ratio:.1f}x",
            f"{report.columns_kept}/{report.columns_dropped}",
            format_duration(report.seconds),
            f"{report.megabytes_per_second:.0f}" if report.converted else "-",
            transfer_change(report.csv_bytes, report.parquet_bytes, report.uplink_mbps),
        ]
        for report in reports
    ]


def print_reports(reports: list[DatasetReport], uplink_mbps: float, console: Any = None) -> None:
    """The summary table, then notes (renamed headers, widened types, rejected-row side files)."""
    headers = [*REPORT_HEADERS[:-1], f"upload at {uplink_mbps:g} Mbit/s: CSV -> Parquet"]
    print_table("labship compress", headers, report_rows(reports), console)
    for report in reports:
        for note in report.notes:
            print(f"note: {report.name}: {note}")
        if report.rejected_rows:
            files = ", ".join(str(Path(report.target) / name) for name in report.rejected_files)
            print(f"note: {report.name}: {report.rejected_rows} rejected rows written to {files}")
