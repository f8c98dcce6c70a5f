"""Streaming CSV -> Parquet: bounded memory, lossless types, deterministic and atomic output.

Modules, in import order (each imports only the ones above it):

- `errors`    CompressError (what a user sees), Promotion (schema must widen), `printable`
- `dialect`   Dialect (how a file is written) and `detect`, where a sniffer plugs in
- `settings`  Settings / Overrides (what the user chose) and `validate`
- `reader`    blocks of whole records cut in the file's dialect; header
- `types`     lossless type inference (leading zeros, big integers, long decimals, booleans)
- `sampling`  typing a sampled piece: Arrow's guess, lossless checks where it chose a number
- `schema`    sampling, unification across files, the dataset `Plan`
- `parse`     one block -> Arrow table with the plan's types; bad rows; promotions
- `sinks`     Parquet file / hive partitions / rejected-rows side file, temporary names
- `pipeline`  one source: read, parse in threads, write in a writer thread
- `manifest`  the target's record of what was converted from what
- `packing`   the packed layout: sources cut into packs at content-defined points
- `resume`    the finished outputs of a failed run, kept for the next one
- `report`    DatasetReport, progress hooks, the terminal table
- `dataset`   one dataset: discovery, target safety, rounds, FileJob -> JobOutcome
- `command`   `invoke compress`: datasets of [tool.labship] or --source/--target
"""

from __future__ import annotations

from labship.compress.command import run
from labship.compress.dataset import FileJob, JobOutcome, PackJob, compress_dataset, find_sources, run_job
from labship.compress.dialect import Dialect, DialectSettings, detect
from labship.compress.errors import CompressError, Promotion
from labship.compress.manifest import MANIFEST, Manifest
from labship.compress.pipeline import FileResult, convert_file
from labship.compress.report import DatasetReport, ProgressHook, RichProgress, print_reports, report_rows
from labship.compress.schema import Plan, plan_dataset, unify
from labship.compress.settings import Overrides, Settings, parse_type, settings_for, validate
from labship.compress.sinks import REJECTED_DIR, output_name

__all__ = [
    "MANIFEST",
    "REJECTED_DIR",
    "CompressError",
    "DatasetReport",
    "Dialect",
    "DialectSettings",
    "FileJob",
    "FileResult",
    "JobOutcome",
    "Manifest",
    "Overrides",
    "PackJob",
    "Plan",
    "ProgressHook",
    "Promotion",
    "RichProgress",
    "Settings",
    "compress_dataset",
    "convert_file",
    "detect",
    "find_sources",
    "output_name",
    "parse_type",
    "plan_dataset",
    "print_reports",
    "report_rows",
    "run",
    "run_job",
    "settings_for",
    "unify",
    "validate",
]
