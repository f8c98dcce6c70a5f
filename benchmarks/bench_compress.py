"""Benchmark `labship compress` against DuckDB, Polars and pandas+pyarrow on the same generated CSV.

    .venv/bin/python benchmarks/bench_compress.py            # full: 1 GB directory + 4 GB single file
    .venv/bin/python benchmarks/bench_compress.py --scale 0.1 # quick look

Input (cached in benchmarks/data/, gitignored): a directory of PeMS-like traffic CSV files made by
`labship.sample` (one seed per file, so no two files are alike; 52 columns, the higher lanes mostly
empty) and one big file: the directory's files concatenated, repeated with the year shifted
(2024 -> 2025 -> ...) so that the copies are a whole directory apart, never inside one row group.
Each engine runs as its own subprocess; wall time is measured around it and peak RSS is the
largest sum of RSS over the subprocess and its children, polled every 20 ms (psutil).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
OUT = HERE / "out"
ROWS_PER_FILE = 20_000  # ~3 MB per file, like a day of one district
SUBSET = [
    "Timestamp",
    "Station",
    "Direction",
    "Lane Type",
    "Samples",
    "% Observed",
    "Total Flow",
    "Avg Occupancy",
    "Avg Speed",
    "Lane 1 Flow",
    "Lane 2 Flow",
]
TIMESTAMP_FORMAT = "%m/%d/%Y %H:%M:%S"


def _one_file(arguments: tuple[Path, int]) -> int:
    from labship.sample import write_traffic_csv

    directory, seed = arguments
    [path] = write_traffic_csv(directory / f"s{seed:05d}", files=1, rows_per_file=ROWS_PER_FILE, seed=seed)
    final = directory / f"part-{seed:05d}.csv"
    path.rename(final)
    path.parent.rmdir()
    return final.stat().st_size


def generate(scale: float) -> tuple[Path, Path]:
    """The many-files directory (~1 GB x scale) and the single file (~4 GB x scale), cached."""
    tag = f"scale-{scale:g}"
    many, single = DATA / tag / "many", DATA / tag / "single"
    if not (DATA / tag / "done").exists():
        shutil.rmtree(DATA / tag, ignore_errors=True)
        many.mkdir(parents=True)
        single.mkdir(parents=True)
        files = max(2, round(330 * scale))
        print(f"generating {files} files of {ROWS_PER_FILE} rows in {many} ...", flush=True)
        with ProcessPoolExecutor(2) as pool:
            list(pool.map(_one_file, [(many, seed) for seed in range(files)]))
        parts = sorted(many.glob("*.csv"))
        with open(single / "big.csv", "wb") as big:
            big.write(parts[0].read_bytes().split(b"\n", 1)[0] + b"\n")
            for copy in range(4):
                for part in parts:
                    body = part.read_bytes().split(b"\n", 1)[1]
                    big.write(body.replace(b"/2024 ", f"/{2024 + copy} ".encode()) if copy else body)
        (DATA / tag / "done").touch()
    return many, single


def _size(path: Path) -> int:
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    return sum(pq.read_metadata(p).num_rows for p in files if not p.name.startswith("."))


# --- engines: each runs in a fresh subprocess --------------------------------------------------------


def run_engine(engine: str, source: Path, output: Path, columns: list[str] | None) -> None:
    csv_glob = str(source / "*.csv")
    if engine == "labship":
        from labship.compress import Settings, compress_dataset

        settings = Settings(columns=tuple(columns or ()), timestamp_formats=(TIMESTAMP_FORMAT,))
        compress_dataset("bench", source, output, settings, jobs=2)
    elif engine == "duckdb":
        import duckdb

        select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
        duckdb.sql(
            f"COPY (SELECT {select} FROM read_csv('{csv_glob}')) TO '{output}' (FORMAT parquet, COMPRESSION zstd)"  # noqa: E501
        )
    elif engine == "polars":
        import polars as pl

        frame = pl.scan_csv(csv_glob, infer_schema_length=10000)
        if columns:
            frame = frame.select(columns)
        frame.sink_parquet(output, compression="zstd")
    elif engine == "pandas":
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        output.mkdir(parents=True)
        for path in sorted(source.glob("*.csv")):
            writer = None
            for chunk in pd.read_csv(path, usecols=columns, chunksize=500_000, low_memory=False):
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(
                        output / f"{path.stem}.parquet", table.schema, compression="zstd"
                    )
                writer.write_table(table.cast(writer.schema))
            if writer is not None:
                writer.close()
    else:
        raise SystemExit(f"unknown engine {engine}")


def measure(engine: str, source: Path, output: Path, columns: list[str] | None) -> dict[str, object]:
    import psutil

    shutil.rmtree(output, ignore_errors=True)
    if output.is_file():
        output.unlink()
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, "--engine", engine, "--source", str(source), "--output", str(output)]
    if columns:
        command += ["--columns", ",".join(columns)]
    started = time.perf_counter()
    process = psutil.Popen(command)
    peak = 0
    cpu_seen: dict[int, float] = {}  # pid -> user+system seconds at its last poll
    status = None
    while status is None:
        pid, code, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            status = (os.waitstatus_to_exitcode(code), usage)
            break
        try:
            tree = [process, *process.children(recursive=True)]
            rss = 0
            for member in tree:
                rss += member.memory_info().rss
                times = member.cpu_times()
                cpu_seen[member.pid] = times.user + times.system
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    wall = time.perf_counter() - started
    code, usage = status
    if code != 0:
        return {"engine": engine, "error": f"exit status {code}"}
    # CPU of the engine and every process under it (forkserver workers are not reaped by the engine,
    # so rusage alone would miss them): the larger of rusage and the polled sum
    cpu = max(usage.ru_utime + usage.ru_stime, sum(cpu_seen.values()))
    return {
        "engine": engine,
        "wall": wall,
        "cpu": cpu,
        "rss": peak,
        "bytes": _size(output),
        "rows": _rows(output),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="input size factor (1 = 1 GB dir + 4 GB file)"
    )
    parser.add_argument("--engines", default="labship,duckdb,polars,pandas", help="comma list of engines")
    parser.add_argument(
        "--inputs", default="many,single", help="many (directory), single (one big file) or both"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--clean", action="store_true", help="delete the generated input afterwards")
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--columns", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        run_engine(args.engine, args.source, args.output, args.columns.split(",") if args.columns else None)
        return 0

    many, single = generate(args.scale)
    results = []
    for input_name in args.inputs.split(","):
        source = many if input_name == "many" else single
        csv_bytes = _size(source)
        for subset_name, columns in (("all 52", None), (f"{len(SUBSET)} of 52", SUBSET)):
            rows = {}
            for engine in args.engines.split(","):
                suffix = "" if engine in ("labship", "pandas") else ".parquet"
                result = measure(engine, source, OUT / f"{input_name}-{engine}{suffix}", columns)
                result.update(input=input_name, columns=subset_name, csv_bytes=csv_bytes)
                rows[engine] = result
                results.append(result)
                shown = (
                    f"{result['wall']:.1f} s wall, {result['cpu']:.1f} s CPU, "
                    f"{result['rss'] / 1e6:.0f} MB RSS, {result['bytes'] / 1e6:.1f} MB"
                    if "wall" in result
                    else result["error"]
                )
                print(f"{input_name:6} {subset_name:9} {engine:8} {shown}", flush=True)
            counts = {engine: r.get("rows") for engine, r in rows.items() if "rows" in r}
            if len(set(counts.values())) > 1:
                print(f"ROW COUNTS DIFFER: {counts}", flush=True)
        shutil.rmtree(OUT, ignore_errors=True)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.clean:
        shutil.rmtree(DATA / f"scale-{args.scale:g}", ignore_errors=True)
    return 0


def print_table(results: list[dict[str, object]]) -> None:
    """Markdown table; the last columns are labship's value divided by this engine's (< 1: labship wins)."""
    header = "| input | columns | engine | wall s | CPU s | peak RSS MB | output MB | ratio | rows |"
    print(f"\n{header} labship/engine wall | CPU | size |")
    print("|---" * 12 + "|")
    by_key = {(r["input"], r["columns"], r["engine"]): r for r in results}
    for r in results:
        if "wall" not in r:
            print(f"| {r['input']} | {r['columns']} | {r['engine']} | {r['error']} |" + " |" * 8)
            continue
        ours = by_key.get((r["input"], r["columns"], "labship"), {})
        ratios = ["", "", ""]
        if "wall" in ours and r["engine"] != "labship":
            ratios = [f"{ours[key] / r[key]:.2f}" for key in ("wall", "cpu", "bytes")]
        cells = [
            r["input"],
            r["columns"],
            r["engine"],
            f"{r['wall']:.1f}",
            f"{r['cpu']:.1f}",
            f"{r['rss'] / 1e6:.0f}",
            f"{r['bytes'] / 1e6:.1f}",
            f"{r['csv_bytes'] / r['bytes']:.1f}x",
            f"{r['rows']:,}",
            *ratios,
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
