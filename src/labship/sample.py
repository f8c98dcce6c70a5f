"""Deterministic PeMS-like traffic-sensor CSV: the sample data of a new experiment and of the tests.

Each file holds one day of 5-minute station records (as Caltrans PeMS publishes them, plus a
header line): station metadata, totals, then five measures for each of 8 lanes, of which a station
only fills the lanes it has, so the higher lanes are mostly empty. Same arguments, same bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from labship._fs import write_atomic

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
FIRST_DAY = dt.datetime(2024, 1, 1)
STATIONS_PER_FILE = 24
LANE_TYPES = ("ML", "ML", "ML", "ML", "HV", "OR", "FR")


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


def _number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return ""
    return str(int(value)) if digits == 0 else f"{value:.{digits}f}"


def _row(rng: random.Random, station: Station, moment: dt.datetime) -> list[str]:
    load = _daily_load(moment)
    observed = rng.random() > 0.12
    lane_cells: list[str] = []
    total_flow = 0
    occupancies: list[float] = []
    speeds: list[float] = []
    samples_total = 0
    for lane in range(1, LANES + 1):
        if lane > station.lanes:
            lane_cells += [""] * len(LANE_MEASURES)
            continue
        samples = rng.randint(8, 10) if observed else 0
        flow = max(0, int(rng.gauss(180 * load, 18)))
        occupancy = min(1.0, max(0.0, rng.gauss(0.09 * load + 0.004, 0.01)))
        speed = max(3.0, station.free_flow_speed * (1 - 0.55 * load**3) + rng.gauss(0, 2))
        has_speed = station.lane_type != "OR" and rng.random() > 0.05
        lane_cells += [
            _number(samples),
            _number(flow),
            _number(occupancy, 4),
            _number(speed, 1) if has_speed else "",
            "1" if observed else "0",
        ]
        total_flow += flow
        samples_total += samples
        occupancies.append(occupancy)
        if has_speed:
            speeds.append(speed)
    percent_observed = rng.choice((100, 100, 100, 75, 50)) if observed else 0
    return [
        moment.strftime(TIMESTAMP_FORMAT),
        str(station.station_id),
        str(station.district),
        str(station.freeway),
        station.direction,
        station.lane_type,
        _number(station.length, 3) if station.length is not None else "",
        str(samples_total),
        str(percent_observed),
        str(total_flow),
        _number(sum(occupancies) / len(occupancies), 4),
        _number(sum(speeds) / len(speeds), 1) if speeds else "",
        *lane_cells,
    ]


def _csv_line(cells: list[str]) -> str:
    # no cell contains a comma or a quote, so no quoting is needed
    return ",".join(cells) + "\n"


def write_traffic_csv(
    directory: Path, files: int = 4, rows_per_file: int = 2000, seed: int = 0
) -> list[Path]:
    """Write `files` CSV files of `rows_per_file` rows each into `directory`; return their paths.

    File k holds day k (starting 2024-01-01) of 24 stations, rows ordered by time then station.
    Each file is written to a temporary name and renamed, so a killed run leaves no partial file.
    """
    if files < 0 or rows_per_file < 0:
        raise ValueError("files and rows_per_file must be zero or more")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    stations = _stations(rng, STATIONS_PER_FILE)
    header = _csv_line(list(COLUMNS))
    paths = []
    for file_index in range(files):
        day = FIRST_DAY + dt.timedelta(days=file_index)
        file_rng = random.Random(f"{seed}-{file_index}")
        path = directory / f"d07_station_5min_{day:%Y_%m_%d}.csv"
        lines = [header]
        for row_index in range(rows_per_file):
            moment = day + INTERVAL * (row_index // len(stations))
            lines.append(_csv_line(_row(file_rng, stations[row_index % len(stations)], moment)))
        write_atomic(path, "".join(lines))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m labship.sample", description="Write deterministic PeMS-like traffic CSV files."
    )
    parser.add_argument("directory", type=Path, help="directory to write the CSV files into")
    parser.add_argument("--files", type=int, default=4, help="number of files, one day each (default 4)")
    parser.add_argument("--rows", type=int, default=2000, help="rows per file (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    if args.files < 0 or args.rows < 0:
        parser.error("--files and --rows must be zero or more")
    paths = write_traffic_csv(args.directory, files=args.files, rows_per_file=args.rows, seed=args.seed)
    size = sum(path.stat().st_size for path in paths)
    print(f"wrote {len(paths)} files ({size:,} bytes) to {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
