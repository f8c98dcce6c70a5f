"""Benchmark `invoke compress --cluster`: the local process pool vs a Dask cluster of 1 and 2 workers.

One run, one input (sensor-like CSV files written here, deterministic), side by side: wall time,
throughput and the ratio to the local pool; then an estimate, from the measured per-worker
throughput, of the time and cost to compress 1 TB of CSV on N workers.

    python benchmarks/bench_cluster.py --files 24 --megabytes 8
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from labship.compress import Settings, compress_dataset

ROWS_PER_MB = 26_000  # rows of the table below per MB of CSV (measured: ~38 bytes a row)
# Price of one 2-vCPU worker-hour on a general-purpose cloud VM (on-demand, 2026 list prices run
# $0.08-0.10); the estimate scales linearly, so substitute your own.
WORKER_HOUR_USD = 0.10


def write_input(directory: Path, files: int, megabytes: int) -> int:
    """`files` CSV files of about `megabytes` each; returns the total bytes."""
    directory.mkdir(parents=True)
    rows = megabytes * ROWS_PER_MB
    for index in range(files):
        ids = pc.add(pc.multiply(pa.array(range(rows)), 7919), index)
        table = pa.table(
            {
                "station": pc.utf8_lpad(pc.cast(pc.bit_wise_and(ids, 4095), pa.string()), 5, "0"),
                "minute": pc.bit_wise_and(ids, 1023),
                "flow": pc.bit_wise_and(pc.multiply(ids, 31), 1023),
                "speed": pc.divide(pc.cast(pc.bit_wise_and(pc.multiply(ids, 17), 8191), pa.float64()), 100.0),
                "lane": pc.cast(pc.bit_wise_and(ids, 7), pa.string()),
            }
        )
        pacsv.write_csv(table, directory / f"part{index:04d}.csv")
    return sum(path.stat().st_size for path in directory.iterdir())


def timed(source: Path, scratch: Path, label: str, cluster: str) -> float:
    target = scratch / f"out-{label}"
    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    compress_dataset("bench", source, target, Settings(), jobs=2, cluster=cluster)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=24, help="CSV files (default 24)")
    parser.add_argument("--megabytes", type=int, default=8, help="size of each file in MB (default 8)")
    options = parser.parse_args()
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory(prefix="labship-bench-cluster-") as scratch_name:
        scratch = Path(scratch_name)
        total = write_input(scratch / "raw", options.files, options.megabytes)
        megabytes = total / 1e6
        print(f"input: {options.files} files, {megabytes:.0f} MB of CSV")
        times = {"local pool (2 processes)": timed(scratch / "raw", scratch, "local", "local")}
        for workers in (1, 2):
            with LocalCluster(
                n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
            ) as cluster:
                times[f"dask, {workers} worker(s)"] = timed(
                    scratch / "raw", scratch, f"dask{workers}", cluster.scheduler_address
                )
    baseline = times["local pool (2 processes)"]
    print(f"{'run':28} {'seconds':>8} {'MB/s':>7} {'vs local pool':>14}")
    for label, seconds in times.items():
        print(f"{label:28} {seconds:8.1f} {megabytes / seconds:7.1f} {seconds / baseline:13.2f}x")
    per_worker = megabytes / times["dask, 1 worker(s)"]  # MB/s one worker sustains
    print(f"\nscaling 1 -> 2 workers: {times['dask, 1 worker(s)'] / times['dask, 2 worker(s)']:.2f}x")
    print(f"estimate for 1 TB of CSV at {per_worker:.1f} MB/s per worker, ${WORKER_HOUR_USD}/worker-hour:")
    for workers in (1, 8, 32, 128):
        hours = 1e6 / per_worker / workers / 3600
        print(f"  {workers:4d} workers: {hours:6.2f} h, ${hours * workers * WORKER_HOUR_USD:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
