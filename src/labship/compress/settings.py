"""What a user chose for a dataset (pyproject.toml or flags), validated before anything is written.

`Settings` is frozen and fingerprinted: a change in any field re-converts every file of the
dataset. `Overrides` are the command-line flags; `settings_for` layers them over a dataset table.
`validate` checks everything that can be checked without reading a source (types, codec and level,
dialect settings, option combinations), so a bad setting never touches the target.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from labship.compress.dialect import DialectSettings, settings_from
from labship.compress.errors import CompressError

MANIFEST_VERSION = 2
# 4 MB blocks (two parsed at once) and 128 K-row groups keep peak RSS under 0.4 GB on any file size;
# bigger ones shrink the output by <0.5% on the benchmark data (one page per column chunk)
BLOCK_BYTES = 4 << 20
ROW_GROUP_ROWS = 128 * 1024
ON_BAD_ROWS = ("error", "skip")
TYPE_ALIASES = {
    "int": pa.int64(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "double": pa.float64(),
    "str": pa.string(),
    "text": pa.string(),
    "timestamp": pa.timestamp("s"),
    "datetime": pa.timestamp("s"),
    "date": pa.date32(),
    "category": pa.dictionary(pa.int32(), pa.string()),
    "dictionary": pa.dictionary(pa.int32(), pa.string()),
}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What the user chose for one dataset; a change in any of them re-converts every file."""

    columns: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    types: tuple[tuple[str, str], ...] = ()
    timestamp_formats: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    codec: str = "zstd"
    level: int | None = None
    on_bad_rows: str = "error"
    block_bytes: int = BLOCK_BYTES
    row_group_rows: int = ROW_GROUP_ROWS
    pack_bytes: int = 0  # 0: one Parquet file per CSV; else CSV bytes per packed Parquet file
    dialect: DialectSettings = field(default_factory=DialectSettings)
    origin: str = "options"  # where the settings came from, for error messages

    def fingerprint(self) -> str:
        """A short hash of every choice that changes the output (not `origin`)."""
        chosen = {key: value for key, value in asdict(self).items() if key != "origin"}
        chosen["engine"] = [MANIFEST_VERSION, pa.__version__, _labship_version()]
        return hashlib.sha256(json.dumps(chosen, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def explicit_types(self) -> dict[str, pa.DataType]:
        """The `types` table parsed to Arrow types."""
        return {name: parse_type(text, origin=self.origin, column=name) for name, text in self.types}


def _labship_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("labship")
    except PackageNotFoundError:
        return "unknown"


def parse_type(text: str, *, origin: str = "types", column: str = "") -> pa.DataType:
    """A column type as written in `types` (`int32`, `float64`, `string`, `timestamp`, `category`...)."""
    lowered = text.strip().lower()
    if lowered in TYPE_ALIASES:
        return TYPE_ALIASES[lowered]
    try:
        return pa.type_for_alias(lowered)
    except (ValueError, KeyError):
        known = ", ".join(sorted({*TYPE_ALIASES, "int8", "int16", "int32", "int64", "float32", "bool"}))
        raise CompressError(f"{origin}: types.{column}: unknown type {text!r}; use one of {known}") from None


def check_codec(settings: Settings) -> None:
    """Refuse a codec/level pair Arrow cannot write, before anything is written."""
    codec = "uncompressed" if settings.codec == "none" else settings.codec
    try:
        if settings.level is not None and codec in ("uncompressed", "snappy"):
            raise ValueError("this codec has no levels")
        if codec != "uncompressed":
            pa.Codec(codec, compression_level=settings.level)
    except (ValueError, OSError, pa.ArrowException) as error:
        where = f"{settings.origin}: codec {settings.codec!r} level {settings.level}"
        raise CompressError(f"{where}: {error}; use another level or leave it unset") from None


def validate(settings: Settings) -> None:
    """Every check that needs no source file: types, codec, bad-row policy, option combinations."""
    settings.explicit_types()
    check_codec(settings)
    settings.dialect.check(settings.origin)
    if settings.on_bad_rows not in ON_BAD_ROWS:
        raise CompressError(f"{settings.origin}: on-bad-rows {settings.on_bad_rows!r}: use error or skip")
    if settings.columns and settings.drop:
        raise CompressError(f"{settings.origin}: give either columns (keep these) or drop, not both")
    if settings.block_bytes < 1 or settings.row_group_rows < 1:
        raise CompressError(f"{settings.origin}: block and row-group sizes must be positive")
    if settings.pack_bytes < 0:
        raise CompressError(f"{settings.origin}: pack-mb must be 0 (one file per CSV) or a positive size")
    if settings.pack_bytes and settings.partition_by:
        raise CompressError(
            f"{settings.origin}: pack-mb and partition-by cannot be combined (a partitioned dataset "
            "already groups rows by value); drop one of them"
        )


@dataclass(frozen=True, kw_only=True)
class Overrides:
    """Command-line options; each one set replaces the dataset's setting from pyproject.toml."""

    columns: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    codec: str | None = None
    level: int | None = None
    on_bad_rows: str | None = None
    partition_by: tuple[str, ...] = ()
    pack_mb: int | None = None
    dialect: DialectSettings = field(default_factory=DialectSettings)


def settings_for(dataset: Any, overrides: Overrides, *, origin: str) -> Settings:
    """Settings from a `labship.config.Dataset` (or None for --source/--target) plus the options."""
    columns = overrides.columns or (() if overrides.drop else tuple(getattr(dataset, "columns", ())))
    drop = overrides.drop or (() if overrides.columns else tuple(getattr(dataset, "drop", ())))
    configured = getattr(dataset, "dialect", None) or DialectSettings()
    if isinstance(configured, dict):  # labship.config keeps the table's plain values
        configured = settings_from(configured)
    dialect = configured.overridden_by(overrides.dialect)
    return Settings(
        columns=columns,
        drop=drop,
        types=tuple(sorted(getattr(dataset, "types", {}).items())),
        timestamp_formats=tuple(getattr(dataset, "timestamp_formats", ())),
        partition_by=overrides.partition_by or tuple(getattr(dataset, "partition_by", ())),
        codec=overrides.codec or getattr(dataset, "codec", "zstd"),
        level=overrides.level if overrides.level is not None else getattr(dataset, "level", None),
        on_bad_rows=overrides.on_bad_rows or getattr(dataset, "on_bad_rows", "error"),
        pack_bytes=(overrides.pack_mb if overrides.pack_mb is not None else getattr(dataset, "pack_mb", 0))
        << 20,
        dialect=dialect,
        origin=origin,
    )
