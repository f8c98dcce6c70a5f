"""What `invoke compress` runs: choose the datasets, convert them, print the table, write the JSON report."""

from __future__ import annotations

from pathlib import Path

from labship.compress.cluster import LOCAL, check_address
from labship.compress.dataset import compress_dataset
from labship.compress.endpoints import location
from labship.compress.errors import CompressError
from labship.compress.report import DatasetReport, RichProgress, print_reports
from labship.compress.settings import Overrides, Settings, settings_for
from labship.compress.storage import Location


def _check_options(
    dataset: str | None, source: Path | str | None, target: Path | str | None, overrides: Overrides
) -> None:
    if (source is None) != (target is None):
        raise CompressError(
            "--source and --target go together: give both, or neither to use [tool.labship.datasets]"
        )
    if source is not None and dataset is not None:
        raise CompressError("give either --dataset or --source/--target, not both")
    if overrides.columns and overrides.drop:
        raise CompressError("give either --columns (keep these) or --drop, not both")


def _adhoc(
    source: Path | str, target: Path | str, overrides: Overrides, root: Path | None, endpoint_url: str | None
) -> tuple[float, list[tuple[str, Location, Location, Settings]]]:
    from labship.config import DEFAULT_UPLINK_MBPS, ConfigError, load_config

    try:
        config = load_config(root)
        uplink, experiment = config.uplink_mbps, config.root
    except ConfigError:
        uplink, experiment = DEFAULT_UPLINK_MBPS, root
    base = Path.cwd()
    settings = settings_for(None, overrides, origin="--source/--target")
    places = [
        location(text, base=base, root=experiment, endpoint_url=endpoint_url) for text in (source, target)
    ]
    return uplink, [("adhoc", places[0], places[1], settings)]


def _configured(
    dataset: str | None, overrides: Overrides, root: Path | None, endpoint_url: str | None
) -> tuple[float, list[tuple[str, Location, Location, Settings]]]:
    from labship.config import load_config

    config = load_config(root)
    chosen = [config.dataset(dataset)] if dataset else list(config.datasets.values())
    if not chosen:
        raise CompressError(
            f"{config.pyproject}: no [tool.labship.datasets.NAME] table: declare one (source, target), "
            "or pass --source DIR --target DIR"
        )
    return config.uplink_mbps, [
        (
            item.name,
            location(item.source, base=config.root, root=config.root, endpoint_url=endpoint_url),
            location(item.target, base=config.root, root=config.root, endpoint_url=endpoint_url),
            settings_for(item, overrides, origin=f"{config.pyproject} [tool.labship.datasets.{item.name}]"),
        )
        for item in chosen
    ]


def _configured_cluster(root: Path | None) -> str:
    """`compress-cluster` of [tool.labship], or the local pool outside an experiment."""
    from labship.config import ConfigError, load_config

    try:
        return load_config(root).compress_cluster
    except ConfigError:
        return LOCAL


def _write_report(report_path: Path, uplink: float, reports: list[DatasetReport], errors: list[str]) -> None:
    from labship.report import write_json_atomic

    payload = {"uplink_mbps": uplink, "datasets": [report.as_json() for report in reports], "errors": errors}
    try:
        write_json_atomic(report_path, payload)
    except OSError as error:
        raise CompressError(
            f"--report {report_path}: cannot write the report: {error.strerror or error}; "
            "give a file path in a writable directory"
        ) from error


def run(
    *,
    dataset: str | None = None,
    source: Path | str | None = None,
    target: Path | str | None = None,
    overrides: Overrides | None = None,
    report_path: Path | None = None,
    jobs: int | None = None,
    root: Path | None = None,
    progress: bool = True,
    cluster: str | None = None,
    endpoint_url: str | None = None,
) -> list[DatasetReport]:
    """What `invoke compress` does: convert the chosen datasets, print the table, write the JSON report.

    `source`/`target` (and a dataset's) may be `s3://bucket/prefix`: `endpoint_url` and the
    credentials are found as `labship.compress.endpoints` describes."""
    overrides = overrides or Overrides()
    _check_options(dataset, source, target, overrides)
    if report_path is not None and report_path.is_dir():
        raise CompressError(f"--report {report_path}: is a directory; give a file path such as report.json")
    if source is not None and target is not None:
        uplink, chosen = _adhoc(source, target, overrides, root, endpoint_url)
    else:
        uplink, chosen = _configured(dataset, overrides, root, endpoint_url)
    cluster = check_address(cluster or _configured_cluster(root))
    reports, errors = [], []
    for name, source_dir, target_dir, settings in chosen:
        hook = RichProgress() if progress else None
        try:
            reports.append(
                compress_dataset(
                    name,
                    source_dir,
                    target_dir,
                    settings,
                    uplink_mbps=uplink,
                    jobs=jobs,
                    progress=hook,
                    cluster=cluster,
                )
            )
        except CompressError as error:
            errors.append(f"dataset {name}: {error}")
    if reports:
        print_reports(reports, uplink)
    if report_path is not None:
        _write_report(report_path, uplink, reports, errors)
    if errors:
        raise CompressError("\n".join(errors))
    return reports
