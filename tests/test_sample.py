"""The sample traffic data: deterministic, PeMS-shaped, sparse higher lanes, written atomically."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.csv as pacsv

from labship.sample import COLUMNS, main, write_traffic_csv


def test_same_seed_gives_same_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    first = write_traffic_csv(tmp_path / "a", files=2, rows_per_file=300)
    second = write_traffic_csv(tmp_path / "b", files=2, rows_per_file=300)
    third = write_traffic_csv(tmp_path / "c", files=2, rows_per_file=300, seed=1)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert first[0].read_bytes() != third[0].read_bytes()


def test_files_have_pems_columns_rows_and_sparse_lanes(tmp_path: Path) -> None:
    paths = write_traffic_csv(tmp_path, files=3, rows_per_file=500)
    assert len(paths) == 3 and all(p.suffix == ".csv" for p in paths)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary files left"
    table = pacsv.read_csv(paths[0])
    assert table.num_rows == 500
    assert tuple(table.column_names) == COLUMNS
    assert table.column("Timestamp")[0].as_py() == "01/01/2024 00:00:00"
    assert set(table.column("Direction").to_pylist()) <= set("NSEW")
    assert table.column("Lane 1 Flow").null_count < 50
    assert table.column("Lane 8 Flow").null_count > 450


def test_command_line_writes_requested_files(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "labship.sample", str(tmp_path), "--files", "2", "--rows", "10"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "wrote 2 files" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "d07_station_5min_2024_01_01.csv",
        "d07_station_5min_2024_01_02.csv",
    ]
    assert len((tmp_path / "d07_station_5min_2024_01_02.csv").read_text().splitlines()) == 11


def test_default_sample_is_a_week_of_full_days_of_tens_of_mb(tmp_path: Path, monkeypatch) -> None:
    """What a new experiment (and the demo) gets: 7 days x 120 stations x 288 five-minute intervals."""
    monkeypatch.delenv("LABSHIP_SAMPLE_SIZE", raising=False)
    assert main([str(tmp_path)]) == 0
    paths = sorted(tmp_path.glob("*.csv"))
    assert [p.name for p in paths][::6] == [
        "d07_station_5min_2024_01_01.csv",
        "d07_station_5min_2024_01_07.csv",
    ]
    size = sum(p.stat().st_size for p in paths)
    assert 20e6 < size < 60e6, f"{size / 1e6:.1f} MB"
    table = pacsv.read_csv(paths[-1])
    assert table.num_rows == 288 * 120
    assert len(set(table.column("Station").to_pylist())) == 120
    assert table.column("Timestamp")[-1].as_py() == "01/07/2024 23:55:00"


def test_small_size_for_test_suites(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LABSHIP_SAMPLE_SIZE", "small")
    assert main([str(tmp_path)]) == 0
    paths = sorted(tmp_path.glob("*.csv"))
    assert len(paths) == 4 and all(len(p.read_text().splitlines()) == 2001 for p in paths)
