"""Deterministic PeMS-like traffic-sensor CSV: the sample data of a new experiment and of the tests.

Each file holds one day of 5-minute station records (as Caltrans PeMS publishes them, plus a
header line): station metadata, totals, then five measures for each of 8 lanes, of which a station
only fills the lanes it has, so the higher lanes are mostly empty. Same arguments, same bytes.

The default size is what a newcomer should see the compression ratio on: 7 days x 120 stations x
288 intervals (242k rows, ~35 MB of CSV), the shape of the real PeMS station files. Rows are made
column-wise with Arrow compute (seeded `pyarrow.compute.random`, Box-Muller for the Gaussian noise)
and written by Arrow's CSV writer, so the default sample takes seconds, not minutes of Python loops.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from labship._fs import atomic_file

LANES = 8
LANE_MEASURES = ("Samples", "Flow", "Avg Occ", "Avg Speed", "Observed")
STATION_COLUMNS = (
    "Timestamp",
    "Station",
    "District",
    "Freeway",
    "Direction",
    "Lane Type",
    "Station Length",
    "Samples",
    "% Observed",
    "Total Flow",
    "Avg Occupancy",
    "Avg Speed",
)
COLUMNS = STATION_COLUMNS + tuple(
    f"Lane {lane} {measure}" for lane in range(1, LANES + 1) for measure in LANE_MEASURES
)
TIMESTAMP_FORMAT = "%m/%d/%Y %H:%M:%S"
INTERVAL = dt.timedelta(minutes=5)
INTERVALS_PER_DAY = 288
FIRST_DAY = dt.datetime(2024, 1, 1)
STATIONS_PER_FILE = 24
LANE_TYPES = ("ML", "ML", "ML", "ML", "HV", "OR", "FR")
# the default sample: a week of full days for 120 stations (~35 MB of CSV, ~3 s of CPU to write)
DEFAULT_FILES = 7
DEFAULT_STATIONS = 120
# LABSHIP_SAMPLE_SIZE=small: the size test suites scaffold with (4 files x 2000 rows, 1.2 MB)
SMALL = {"files": 4, "stations": STATIONS_PER_FILE, "rows": 2000}


@dataclass(frozen=True)
class Station:
    """The fixed description of one sensor station."""

    station_id: int
    district: int
    freeway: int
    direction: str
    lane_type: str
    length: float | None
    lanes: int
    free_flow_speed: float


def _stations(rng: random.Random, count: int) -> list[Station]:
    stations = []
    for index in range(count):
        district = rng.choice((3, 4, 7, 8, 11, 12))
        lane_type = rng.choice(LANE_TYPES)
        stations.append(
            Station(
                station_id=district * 100_000 + 1000 + index * 7,
                district=district,
                freeway=rng.choice((5, 10, 15, 80, 101, 110, 405, 580, 880)),
                direction=rng.choice("NSEW"),
                lane_type=lane_type,
                # ramps have no length in PeMS
                length=None if lane_type in ("OR", "FR") else round(rng.uniform(0.1, 3.5), 3),
                lanes=1 if lane_type in ("OR", "FR") else rng.choice((2, 3, 3, 4, 4, 5, 6)),
                free_flow_speed=rng.uniform(58, 70),
            )
        )
    return stations


def _daily_load(moment: dt.datetime) -> float:
    """0..1 traffic intensity: low at night, rush hours at 8:00 and 17:30."""
    hour = moment.hour + moment.minute / 60
    morning = max(0.0, 1 - abs(hour - 8) / 2.5)
    evening = max(0.0, 1 - abs(hour - 17.5) / 3)
    return 0.08 + 0.35 * min(1.0, hour / 7 if hour < 7 else 1.0) + 0.55 * max(morning, evening)


class _Noise:
    """Seeded uniform and Gaussian arrays of one length (each draw gets its own sub-seed)."""

    def __init__(self, rng: random.Random, length: int) -> None:
        self.rng, self.length = rng, length

    def uniform(self) -> pa.Array:
        return pc.random(self.length, initializer=self.rng.getrandbits(63))

    def gauss(self, mean: pa.Array | float, sigma: float) -> pa.Array:
        # Box-Muller on two uniforms in (0, 1]
        radius = pc.sqrt(pc.multiply(pc.ln(pc.subtract(1.0, self.uniform())), -2.0))
        normal = pc.multiply(radius, pc.cos(pc.multiply(self.uniform(), 2 * math.pi)))
        return pc.add(mean, pc.multiply(normal, sigma))


def _round(values: pa.Array, digits: int) -> pa.Array:
    """Round to `digits` decimals as the nearest double of the decimal text (Arrow's `round` can
    land one ulp off, e.g. 58.800000000000004, which a lossless reader must keep as a decimal)."""
    scale = 10**digits
    return pc.divide(pc.round(pc.multiply(values, scale)), float(scale))


def _clip(values: pa.Array, low: float, high: float | None = None) -> pa.Array:
    values = pc.max_element_wise(values, low)
    return values if high is None else pc.min_element_wise(values, high)


def _lanes(noise: _Noise, rows: dict[str, pa.Array]) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
    """The per-lane columns and the station totals computed from them."""
    load, lanes, observed = rows["load"], rows["lanes"], rows["observed"]
    columns: dict[str, pa.Array] = {}
    total_flow = pa.repeat(0, noise.length).cast(pa.int64())
    occupancy_sum = pa.repeat(0.0, noise.length)
    speed_sum, speed_count = pa.repeat(0.0, noise.length), pa.repeat(0, noise.length).cast(pa.int64())
    samples_total = pa.repeat(0, noise.length).cast(pa.int64())
    for lane in range(1, LANES + 1):
        absent = pc.less(lanes, lane)
        samples = pc.if_else(observed, pc.add(pc.floor(pc.multiply(noise.uniform(), 3)), 8), 0).cast(
            pa.int64()
        )
        flow = pc.floor(_clip(noise.gauss(pc.multiply(load, 180.0), 18), 0)).cast(pa.int64())
        occupancy = _round(_clip(noise.gauss(pc.add(pc.multiply(load, 0.09), 0.004), 0.01), 0.0, 1.0), 4)
        free_flow = pc.multiply(rows["free_flow"], pc.subtract(1.0, pc.multiply(pc.power(load, 3), 0.55)))
        speed = _round(_clip(noise.gauss(free_flow, 2), 3.0), 1)
        has_speed = pc.and_(rows["has_speed_type"], pc.greater(noise.uniform(), 0.05))
        present = pc.invert(absent)
        for measure, values in (
            ("Samples", samples),
            ("Flow", flow),
            ("Avg Occ", occupancy),
            ("Avg Speed", pc.if_else(has_speed, speed, pa.scalar(None, pa.float64()))),
            ("Observed", pc.if_else(observed, 1, 0).cast(pa.int64())),
        ):
            columns[f"Lane {lane} {measure}"] = pc.if_else(absent, pa.scalar(None, values.type), values)
        total_flow = pc.add(total_flow, pc.if_else(present, flow, 0))
        samples_total = pc.add(samples_total, pc.if_else(present, samples, 0))
        occupancy_sum = pc.add(occupancy_sum, pc.if_else(present, occupancy, 0.0))
        counted = pc.and_(present, has_speed)
        speed_sum = pc.add(speed_sum, pc.if_else(counted, speed, 0.0))
        speed_count = pc.add(speed_count, pc.if_else(counted, 1, 0).cast(pa.int64()))
    totals = {
        "Samples": samples_total,
        "Total Flow": total_flow,
        "Avg Occupancy": _round(pc.divide(occupancy_sum, lanes.cast(pa.float64())), 4),
        "Avg Speed": pc.if_else(
            pc.greater(speed_count, 0),
            _round(pc.divide(speed_sum, speed_count.cast(pa.float64())), 1),
            pa.scalar(None, pa.float64()),
        ),
    }
    return columns, totals


def _day_table(stations: list[Station], day: dt.datetime, rows: int, rng: random.Random) -> pa.Table:
    """`rows` records of `day`, ordered by time then station."""
    count = len(stations)
    station_of_row = pa.array([index % count for index in range(rows)], pa.int32())
    interval_of_row = pa.array([index // count for index in range(rows)], pa.int32())
    intervals = (rows + count - 1) // count
    moments = [day + INTERVAL * step for step in range(intervals)]

    def per_station(values: list[object], kind: pa.DataType) -> pa.Array:
        return pc.take(pa.array(values, kind), station_of_row)

    noise = _Noise(rng, rows)
    observed = pc.greater(noise.uniform(), 0.12)
    row_values = {
        "load": pc.take(pa.array([_daily_load(moment) for moment in moments], pa.float64()), interval_of_row),
        "lanes": per_station([s.lanes for s in stations], pa.int64()),
        "observed": observed,
        "free_flow": per_station([s.free_flow_speed for s in stations], pa.float64()),
        "has_speed_type": per_station([s.lane_type != "OR" for s in stations], pa.bool_()),
    }
    lane_columns, totals = _lanes(noise, row_values)
    pick = noise.uniform()
    percent_observed = pc.if_else(
        observed, pc.if_else(pc.less(pick, 0.6), 100, pc.if_else(pc.less(pick, 0.8), 75, 50)), 0
    )
    timestamps = pc.take(pa.array(moments, pa.timestamp("s")), interval_of_row)
    columns = {
        "Timestamp": pc.strftime(timestamps, format=TIMESTAMP_FORMAT),
        "Station": per_station([s.station_id for s in stations], pa.int64()),
        "District": per_station([s.district for s in stations], pa.int64()),
        "Freeway": per_station([s.freeway for s in stations], pa.int64()),
        "Direction": per_station([s.direction for s in stations], pa.string()),
        "Lane Type": per_station([s.lane_type for s in stations], pa.string()),
        "Station Length": per_station([s.length for s in stations], pa.float64()),
        "% Observed": percent_observed.cast(pa.int64()),
        **totals,
        **lane_columns,
    }
    return pa.table({name: columns[name] for name in COLUMNS})


def write_traffic_csv(
    directory: Path,
    files: int = 4,
    rows_per_file: int = 2000,
    seed: int = 0,
    *,
    stations: int = STATIONS_PER_FILE,
) -> list[Path]:
    """Write `files` CSV files of `rows_per_file` rows each into `directory`; return their paths.

    File k holds day k (starting 2024-01-01) of `stations` stations, rows ordered by time then
    station. Each file is written to a temporary name and renamed, so a killed run leaves no partial file.
    """
    if files < 0 or rows_per_file < 0 or stations < 1:
        raise ValueError("files and rows_per_file must be zero or more, stations one or more")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    station_list = _stations(rng, stations)
    # no cell holds a comma or a quote, so nothing needs quoting (as in PeMS' own files)
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    header = (",".join(COLUMNS) + "\n").encode()  # Arrow would quote the names
    paths = []
    for file_index in range(files):
        day = FIRST_DAY + dt.timedelta(days=file_index)
        table = _day_table(station_list, day, rows_per_file, random.Random(f"{seed}-{file_index}"))
        path = directory / f"d07_station_5min_{day:%Y_%m_%d}.csv"
        with atomic_file(path) as handle:
            handle.write(header)
            pacsv.write_csv(table, handle, options)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m labship.sample", description="Write deterministic PeMS-like traffic CSV files."
    )
    parser.add_argument("directory", type=Path, help="directory to write the CSV files into")
    parser.add_argument(
        "--files",
        type=int,
        default=DEFAULT_FILES,
        help=f"number of files, one day each (default {DEFAULT_FILES})",
    )
    parser.add_argument(
        "--stations",
        type=int,
        default=DEFAULT_STATIONS,
        help=f"stations per file (default {DEFAULT_STATIONS})",
    )
    parser.add_argument("--rows", type=int, help="rows per file (default: a full day, 288 x stations)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    if os.environ.get("LABSHIP_SAMPLE_SIZE") == "small":
        parser.set_defaults(**SMALL)
    args = parser.parse_args(argv)
    if args.files < 0 or (args.rows is not None and args.rows < 0) or args.stations < 1:
        parser.error("--files and --rows must be zero or more, --stations one or more")
    rows = INTERVALS_PER_DAY * args.stations if args.rows is None else args.rows
    paths = write_traffic_csv(
        args.directory, files=args.files, rows_per_file=rows, seed=args.seed, stations=args.stations
    )
    size = sum(path.stat().st_size for path in paths)
    print(f"wrote {len(paths)} files ({size:,} bytes) to {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
