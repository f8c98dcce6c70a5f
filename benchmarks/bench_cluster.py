"""Benchmark `invoke compress --cluster`: the local process pool vs a Dask cluster of 1 and 2 workers.

One run, one input (sensor-like CSV files written here, deterministic), side by side: wall time,
throughput and the ratio to the local pool; then an estimate, from the measured per-worker
throughput, of the time and cost to compress 1 TB of CSV on N workers. With `--s3`, the same input
also goes S3 -> S3 on 2 workers through a moto S3 server on 127.0.0.1 (`moto_server` from
labship[test]): the object-storage overhead (listing, ranged reads, uploads, server-side copies), on
loopback, of a server written in Python — a lower bound on real S3's throughput, not a forecast.

    python benchmarks/bench_cluster.py --files 24 --megabytes 8 [--s3]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from labship.compress import Settings, compress_dataset
from labship.compress.storage import Credentials, Endpoint, ObjectPath

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


def timed(
    source: Path | ObjectPath, scratch: Path, label: str, cluster: str, target: ObjectPath | None = None
) -> float:
    output = target if target is not None else scratch / f"out-{label}"
    if isinstance(output, Path):
        shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    compress_dataset("bench", source, output, Settings(), jobs=2, cluster=cluster)
    return time.perf_counter() - started


def s3_run(raw: Path, scratch: Path) -> float:
    """Upload `raw` to a fresh moto server on 127.0.0.1, then time S3 -> S3 on 2 Dask workers."""
    import pyarrow.fs as pafs
    from distributed import LocalCluster

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = Endpoint(f"http://127.0.0.1:{port}", "us-east-1", Credentials("bench", "bench"))
        for _attempt in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        fs = pafs.S3FileSystem(
            access_key="bench",
            secret_key="bench",
            scheme="http",
            endpoint_override=f"127.0.0.1:{port}",
            allow_bucket_creation=True,
        )
        fs.create_dir("bench")
        pafs.copy_files(str(raw), "bench/raw", destination_filesystem=fs)
        with LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as cluster:
            return timed(
                ObjectPath("bench", "raw", endpoint),
                scratch,
                "s3",
                cluster.scheduler_address,
                target=ObjectPath("bench", "out", endpoint),
            )
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=24, help="CSV files (default 24)")
    parser.add_argument("--megabytes", type=int, default=8, help="size of each file in MB (default 8)")
    parser.add_argument("--s3", action="store_true", help="also S3 -> S3 through a moto server on 127.0.0.1")
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
        if options.s3:
            times["dask, 2 workers, S3 -> S3"] = s3_run(scratch / "raw", scratch)
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
