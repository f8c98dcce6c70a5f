"""Read and validate `[tool.labship]` from an experiment's `pyproject.toml`.

Every task reads its settings from here, so the rules live in one place and each error names the
file and the key that is wrong, and what to write instead.

Versions: the template writes `format` (an integer, bumped when `[tool.labship]` or the layout
changes in a way this engine must know about) and `labship-version` (the labship release whose
template made the file) at the top of `[tool.labship]`. Experiments made before the key existed
are format 1. This engine reads formats `MIN_FORMAT`..`FORMAT`: an older experiment gets an error
naming the file, the key and `copier update`; a newer one names the labship upgrade instead.
The repository has no release tags, so Copier's own version (`_commit` in `.copier-answers.yml`)
is only a commit; `format` is what the engine and the update migrations (labship.migrate) compare.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labship import __version__
from labship.errors import EXIT_CONFIG, LabshipError

PYPROJECT = "pyproject.toml"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")  # \Z: `$` would also match before a final newline
CODECS = ("zstd", "snappy", "gzip", "brotli", "lz4", "none")
BAD_ROW_POLICIES = ("error", "skip")
PACKAGE_MANAGERS = ("uv", "poetry")
DEFAULT_UPLINK_MBPS = 24.5
# format 1: experiments from before `format` was recorded (their renders depended on the order the
# image variants were answered in); 2: renders are a pure function of .copier-answers.yml, and
# `format` / `labship-version` are recorded. Keep in step with copier.yml's `labship_format`.
FORMAT = 2
# the oldest format this engine reads without an update (nothing in [tool.labship] broke yet)
MIN_FORMAT = 1
UPDATE_COMMAND = "copier update --trust --defaults"
UPGRADE_COMMANDS = ("uv tool upgrade labship", "pipx upgrade labship")


class ConfigError(LabshipError):
    """A `[tool.labship]` setting is missing or wrong; the message names the file and key."""

    exit_code = EXIT_CONFIG


@dataclass(frozen=True)
class Dataset:
    """One CSV directory compressed into one Parquet directory (`[tool.labship.datasets.NAME]`)."""

    name: str
    source: Path | str  # a directory (absolute), or an s3://bucket/prefix URL as written
    target: Path | str
    columns: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    types: dict[str, str] = field(default_factory=dict)
    timestamp_formats: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    codec: str = "zstd"
    level: int | None = None
    on_bad_rows: str = "error"
    pack_mb: int = 0  # 0: one Parquet file per CSV; N: CSV files packed into Parquet files of ~N MB of CSV
    # CSV dialect keys set in the table (delimiter, quote, escape, header, skip_lines, comment);
    # plain values, checked by labship.compress.dialect.DialectSettings
    dialect: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageVariant:
    """One Jupyter image built with a set of dependency groups (`[tool.labship.images.NAME]`)."""

    name: str
    groups: tuple[str, ...]

    @property
    def groups_arg(self) -> str:
        """The groups as the comma list the Dockerfile's DEPENDENCY_GROUPS build argument takes."""
        return ",".join(self.groups)


@dataclass(frozen=True)
class Notebook:
    """A notebook, the image variant it runs in, and the data it reads (`[tool.labship.notebooks.NAME]`)."""

    name: str
    path: Path
    image: str
    data: tuple[Path, ...] = ()


@dataclass(frozen=True)
class LabshipConfig:
    """The whole `[tool.labship]` table of one experiment repository."""

    root: Path
    project_name: str
    image_name: str
    registry: str
    package_manager: str
    base_image: str
    uplink_mbps: float
    datasets: dict[str, Dataset]
    images: dict[str, ImageVariant]
    notebooks: dict[str, Notebook]
    default_notebook: str | None
    format: int = FORMAT
    labship_version: str | None = None
    compress_cluster: str = "local"  # a Dask scheduler address, or the local process pool

    @property
    def pyproject(self) -> Path:
        return self.root / PYPROJECT

    def image_repository(self) -> str:
        """`<registry>/<image>` without a tag (just `<image>` when no registry is set)."""
        registry = self.registry.rstrip("/")
        return f"{registry}/{self.image_name}" if registry else self.image_name

    def dataset(self, name: str) -> Dataset:
        return _pick(self.datasets, name, "datasets", self.pyproject)

    def image(self, name: str) -> ImageVariant:
        return _pick(self.images, name, "images", self.pyproject)

    def notebook(self, name: str | None = None) -> Notebook:
        chosen = name or self.default_notebook or next(iter(self.notebooks), None)
        if chosen is None:
            raise ConfigError(
                f"{self.pyproject}: no [tool.labship.notebooks.NAME] table: declare at least one "
                "notebook (path, image, data)"
            )
        return _pick(self.notebooks, chosen, "notebooks", self.pyproject)


def _pick(table: dict[str, Any], name: str, kind: str, file: Path) -> Any:
    if name not in table:
        known = ", ".join(sorted(table)) or "none"
        raise ConfigError(f"{file}: no [tool.labship.{kind}.{name}]; declared: {known}")
    return table[name]


def find_root(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` whose pyproject.toml has a [tool.labship] table."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / PYPROJECT
        if candidate.is_file() and "[tool.labship" in candidate.read_text(encoding="utf-8"):
            return directory
    raise ConfigError(
        f"no {PYPROJECT} with a [tool.labship] table in {here} or above: run the task inside an "
        "experiment repository made with `copier copy --trust <labship> DIR`"
    )


def load_config(root: Path | None = None) -> LabshipConfig:
    """Parse and validate `[tool.labship]` of the experiment at (or above) `root`."""
    root = find_root(root)
    file = root / PYPROJECT
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{file}: not valid TOML: {error}") from error
    table = document.get("tool", {}).get("labship")
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: [tool.labship] must be a table")
    reader = _Reader(file, "tool.labship", table)
    format_ = check_format(reader)
    project_name = str(document.get("project", {}).get("name") or root.name)

    datasets = {
        name: _dataset(reader.sub("datasets", name), name, root) for name in reader.table_names("datasets")
    }
    images = {name: _image(reader.sub("images", name), name) for name in reader.table_names("images")}
    if not images:
        images = {"notebook": ImageVariant("notebook", ("notebook",))}
    notebooks = {
        name: _notebook(reader.sub("notebooks", name), name, images)
        for name in reader.table_names("notebooks")
    }
    default_notebook = reader.optional_str("default-notebook")
    if default_notebook is not None and default_notebook not in notebooks:
        reader.fail("default-notebook", f"names no notebook; declared: {', '.join(notebooks)}")
    uplink = reader.number("uplink-mbps", DEFAULT_UPLINK_MBPS)
    if uplink <= 0:
        reader.fail("uplink-mbps", "must be a positive number of megabits per second, e.g. 24.5")
    return LabshipConfig(
        root=root,
        project_name=project_name,
        image_name=reader.optional_str("image") or project_name,
        registry=reader.optional_str("registry") or "",
        package_manager=reader.choice("package-manager", PACKAGE_MANAGERS, "uv"),
        base_image=reader.optional_str("base-image") or "",
        uplink_mbps=uplink,
        datasets=datasets,
        images=images,
        notebooks=notebooks,
        default_notebook=default_notebook,
        format=format_,
        labship_version=reader.optional_str("labship-version"),
        compress_cluster=reader.optional_str("compress-cluster") or "local",
    )


def check_format(reader: _Reader) -> int:
    """The experiment's `format` (1 when absent); an error when this engine cannot read it."""
    value = reader.table.get("format", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        reader.fail("format", f"must be a positive integer written by the template (got {value!r})")
    made_by = reader.table.get("labship-version")
    by = f"labship {made_by}" if isinstance(made_by, str) else "labship"
    if value > FORMAT:
        reader.fail(
            "format",
            f"{value} was written by a newer {by}; this labship {__version__} reads formats up to "
            f"{FORMAT}: upgrade labship (`{UPGRADE_COMMANDS[0]}` or `{UPGRADE_COMMANDS[1]}`)",
        )
    if value < MIN_FORMAT:
        reader.fail(
            "format",
            f"{value} was written by an older {by} template; this labship {__version__} needs format "
            f"{MIN_FORMAT} or newer: run `{UPDATE_COMMAND}` in {reader.file.parent}, resolve any "
            "conflicts and commit",
        )
    return int(value)


def _place(root: Path, text: str) -> Path | str:
    """A dataset's directory under the experiment, or an object-storage URL kept as written."""
    return text if text.startswith("s3://") else root / text


def _dataset(reader: _Reader, name: str, root: Path) -> Dataset:
    columns = reader.str_list("columns")
    drop = reader.str_list("drop")
    if columns and drop:
        reader.fail("drop", "set either `columns` (keep these) or `drop`, not both")
    level = reader.table.get("level")
    if level is not None and (not isinstance(level, int) or isinstance(level, bool)):
        reader.fail("level", "must be an integer, e.g. 3")
    pack_mb = reader.table.get("pack-mb", 0)
    if not isinstance(pack_mb, int) or isinstance(pack_mb, bool) or pack_mb < 0:
        reader.fail(
            "pack-mb", "must be 0 (one Parquet file per CSV) or a size in MB of CSV per file, e.g. 256"
        )
    types = reader.table.get("types", {})
    if not isinstance(types, dict) or not all(isinstance(v, str) for v in types.values()):
        reader.fail("types", 'must be a table of column = "type", e.g. { Station = "int32" }')
    return Dataset(
        name=_checked_name(reader, name),
        source=_place(root, reader.required_str("source")),
        target=_place(root, reader.required_str("target")),
        columns=columns,
        drop=drop,
        types=dict(types),
        timestamp_formats=reader.str_list("timestamp-formats"),
        partition_by=reader.str_list("partition-by"),
        codec=reader.choice("codec", CODECS, "zstd"),
        level=level,
        on_bad_rows=reader.choice("on-bad-rows", BAD_ROW_POLICIES, "error"),
        pack_mb=pack_mb,
        dialect=_dialect(reader),
    )


def _dialect(reader: _Reader) -> dict[str, Any]:
    """The CSV dialect keys a dataset sets (the rest is detected per file)."""
    chosen: dict[str, Any] = {}
    for key in ("delimiter", "quote", "escape", "comment"):
        if (value := reader.optional_str(key)) is not None:
            chosen[key] = value
    if (header := reader.table.get("header")) is not None:
        if not isinstance(header, bool):
            reader.fail("header", "must be true (the first row names the columns) or false")
        chosen["header"] = header
    if (skip := reader.table.get("skip-lines")) is not None:
        if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
            reader.fail("skip-lines", "must be a number of lines, 0 or more")
        chosen["skip_lines"] = skip
    return chosen


def _image(reader: _Reader, name: str) -> ImageVariant:
    groups = reader.str_list("groups")
    if not groups:
        reader.fail("groups", 'list the dependency groups of this image, e.g. ["notebook"]')
    return ImageVariant(name=_checked_name(reader, name), groups=groups)


def _notebook(reader: _Reader, name: str, images: dict[str, ImageVariant]) -> Notebook:
    image = reader.optional_str("image") or next(iter(images))
    if image not in images:
        reader.fail("image", f"names no image variant; declared: {', '.join(images)}")
    return Notebook(
        name=_checked_name(reader, name),
        path=Path(reader.required_str("path")),
        image=image,
        data=tuple(Path(item) for item in reader.str_list("data")),
    )


def _checked_name(reader: _Reader, name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ConfigError(
            f"{reader.file}: [{reader.prefix}]: the name {name!r} must be lower-case letters, "
            "digits, '-' or '_'"
        )
    return name


@dataclass
class _Reader:
    """Typed access to one TOML table that names `file` and the dotted key in every error."""

    file: Path
    prefix: str
    table: dict[str, Any]

    def fail(self, key: str, message: str) -> None:
        raise ConfigError(f"{self.file}: [{self.prefix}] {key}: {message}")

    def sub(self, *keys: str) -> _Reader:
        table: Any = self.table
        for key in keys:
            table = table.get(key, {})
        if not isinstance(table, dict):
            self.fail(".".join(keys), "must be a table")
        return _Reader(self.file, ".".join((self.prefix, *keys)), table)

    def table_names(self, key: str) -> list[str]:
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            self.fail(key, "must be a table of named tables")
        return list(value)

    def optional_str(self, key: str) -> str | None:
        value = self.table.get(key)
        if value is not None and not isinstance(value, str):
            self.fail(key, "must be a string")
        return value

    def required_str(self, key: str) -> str:
        value = self.optional_str(key)
        if not value:
            self.fail(key, "is required")
        return str(value)

    def number(self, key: str, default: float) -> float:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(key, "must be a finite number")
        return float(value)

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.table.get(key, default)
        if value not in allowed:
            self.fail(key, f"must be one of {', '.join(allowed)} (got {value!r})")
        return str(value)

    def str_list(self, key: str) -> tuple[str, ...]:
        value = self.table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(key, 'must be a list of strings, e.g. ["a", "b"]')
        return tuple(value)
