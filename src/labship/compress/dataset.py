"""Converting a dataset: discovery, target safety, the manifest, rounds of conversion, the report.

1. The sources (regular `.csv`/`.csv.gz` files under the source directory or `s3://` prefix; other
   entries are skipped with a note) are compared with the manifest of the previous run: a file whose size,
   mtime and settings are unchanged is skipped without being opened.
2. The whole plan is made before the target is touched: settings validated, every changed file's
   dialect and header read, the dataset schema inferred (`schema.plan_dataset`). A bad setting or
   an unknown column leaves the target exactly as it was.
3. Changed files are converted (largest first; in worker processes when there is enough data;
   the same process pool looks at the files in step 2), each as a `FileJob` (or a `PackJob` of
   several sources in the packed layout, `packing`) returning a `JobOutcome`. An outcome asking
   for promotion widens the plan and starts another round over every file, so all outputs share
   one schema.
4. New outputs are published (renamed into place) only when every file of the round succeeded. A
   failed or interrupted round keeps what it finished for the next run (`resume`), so a re-run
   converts only what is left and the previous outputs stay in place meanwhile.
5. Outputs of sources that are gone, and old outputs a source no longer produces, are removed
   only after the run succeeded, and only when they lie inside the target.

Where the bytes live (a local directory or object storage) is `labship.compress.storage`'s concern.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import queue
import stat as stat_module
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from labship.compress import resume, storage
from labship.compress.cluster import LOCAL, run_on_cluster
from labship.compress.errors import CompressError, Promotion, printable
from labship.compress.manifest import Manifest
from labship.compress.packing import Pack, group, packs_to_convert
from labship.compress.pipeline import FileResult, convert_file, convert_pack, use_lean_allocator
from labship.compress.report import DatasetReport, ProgressHook
from labship.compress.schema import Plan, SourceHeader, plan_dataset, unify
from labship.compress.settings import Settings, validate
from labship.compress.sinks import output_name, rejected_name
from labship.compress.storage import Location, ObjectPath

POOL_MIN_BYTES = 64 << 20  # below this, starting worker processes costs more than it saves
MAX_ROUNDS = 20


@dataclass(frozen=True)
class FileJob:
    """Everything a worker needs to convert one source."""

    source: Location
    relative: str
    target: Location
    header: SourceHeader
    plan: Plan
    settings: Settings

    def source_bytes(self) -> int:
        """The source's CSV bytes (what progress counts)."""
        return self.source.stat().st_size

    @property
    def members(self) -> tuple[FileJob, ...]:
        """The sources this job converts: itself."""
        return (self,)

    @property
    def packed_outputs(self) -> list[str] | None:
        """The pack file its sources share: none (one output per source)."""
        return None


@dataclass(frozen=True)
class PackJob:
    """Several sources written, in order, into one Parquet file (the packed layout)."""

    name: str  # the output, relative to the target
    members: tuple[FileJob, ...]

    @property
    def source(self) -> Path:
        """The first member's source (for messages)."""
        return self.members[0].source

    @property
    def relative(self) -> str:
        return self.name

    def source_bytes(self) -> int:
        """The members' CSV bytes (what progress counts)."""
        return sum(member.source_bytes() for member in self.members)

    @property
    def packed_outputs(self) -> list[str] | None:
        """The pack file its members share (a kept result must name it to be reused)."""
        return [self.name]


@dataclass(frozen=True)
class JobOutcome:
    """What a worker reports: a result, columns to widen, or an error message (exactly one)."""

    relative: str
    result: FileResult | None = None
    more: tuple[FileResult, ...] = ()  # the other members' results of a pack

    def results(self) -> list[FileResult]:
        """Every source's result (one per member of a pack), or none."""
        return [self.result, *self.more] if self.result is not None else []

    promotions: dict[str, pa.DataType] = field(default_factory=dict)
    error: str | None = None


def _convert_job(job: FileJob | PackJob, on_progress: Callable[[int], None] | None) -> JobOutcome:
    if isinstance(job, PackJob):
        first = job.members[0]
        results = convert_pack(
            [(member.source, member.relative, member.header) for member in job.members],
            job.name,
            first.target,
            first.plan,
            first.settings,
            on_progress=on_progress,
        )
        return JobOutcome(job.name, result=results[0], more=tuple(results[1:]))
    result = convert_file(
        job.source, job.relative, job.target, job.header, job.plan, job.settings, on_progress=on_progress
    )
    return JobOutcome(job.relative, result=result)


def run_job(job: FileJob | PackJob, on_progress: Callable[[int], None] | None = None) -> JobOutcome:
    """Convert one source (or pack); every expected failure becomes an outcome naming the file."""
    try:
        return _convert_job(job, on_progress)
    except Promotion as promotion:
        return JobOutcome(job.relative, promotions=promotion.changes)
    except CompressError as error:
        return JobOutcome(job.relative, error=str(error))
    except (pa.ArrowException, OSError) as error:  # e.g. disk full, permissions: name the file
        return JobOutcome(job.relative, error=f"{job.source}: {printable(str(error), 300)}")


_worker_progress: Any = None


def _init_worker(progress_queue: Any) -> None:
    global _worker_progress
    _worker_progress = progress_queue
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _NoPandas())


class _NoPandas(importlib.abc.MetaPathFinder):
    """Makes `import pandas` fail in a worker. pyarrow imports pandas, when installed, on a process's
    first pa.array()/pa.scalar() (to check whether the value is a pandas object): 39 MB of RSS and
    0.45 s in every worker, for nothing, since a worker only ever holds Arrow data. pyarrow treats the
    failed import as "pandas not installed". The user's own process is left alone."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname == "pandas":
            raise ModuleNotFoundError("labship's compress workers do not load pandas", name=fullname)


def _pool_job(job: FileJob) -> JobOutcome:
    """Worker-process entry point: progress goes through the shared queue."""
    return run_job(job, _worker_progress.put if _worker_progress is not None else None)


def check_separate(source: Location, target: Location) -> None:
    """Refuse a target equal to, inside, or above the source (compared as resolved paths)."""
    if not (isinstance(source, Path) and isinstance(target, Path)):
        storage.check_separate_objects(source, target)
        return
    try:
        real_source, real_target = source.resolve(strict=False), target.resolve(strict=False)
    except (OSError, RuntimeError) as error:
        raise CompressError(f"{source} or {target}: cannot resolve the path: {error}") from error
    storage.refuse_overlap(
        source,
        target,
        same=real_source == real_target,
        inside=real_target.is_relative_to(real_source),
        contains=real_source.is_relative_to(real_target),
        what="directory",
    )


def _is_source_name(name: str) -> bool:
    return not name.startswith(".") and (name.endswith(".csv") or name.endswith(".csv.gz"))


def _regular(path: Path, notes: list[str]) -> os.stat_result | None:
    """The stat of `path` if it is a regular file (links followed); anything else is noted and skipped."""
    try:
        result = path.stat()
    except OSError as error:
        notes.append(f"{path}: skipped: {error.strerror or error} (a dangling link or a link loop?)")
        return None
    if not stat_module.S_ISREG(result.st_mode):
        notes.append(f"{path}: skipped: not a regular file (a FIFO, socket or device)")
        return None
    return result


def _walk_local(source: Path, notes: list[str]) -> Iterator[tuple[str, Path, os.stat_result]]:
    if not source.is_dir():
        raise CompressError(f"source directory {source} does not exist; create it or fix `source`")

    def walk_error(error: OSError) -> None:
        notes.append(f"{error.filename}: skipped: {error.strerror or error}")

    for root, directories, files in os.walk(source, onerror=walk_error):
        here = Path(root)
        directories[:] = sorted(name for name in directories if not name.startswith("."))
        for name in sorted(files):
            found_stat = _regular(here / name, notes) if _is_source_name(name) else None
            if found_stat is not None:
                yield (here / name).relative_to(source).as_posix(), here / name, found_stat


def _walk_objects(source: ObjectPath) -> Iterator[tuple[str, ObjectPath, storage.ObjectStat]]:
    storage.check_bucket(source)
    for relative, path in storage.walk_objects(source):
        if _is_source_name(path.name) and path.listed is not None:
            yield relative, path, path.listed


def find_sources(
    source: Location, *, notes: list[str] | None = None, stats: dict[str, Any] | None = None
) -> dict[str, Location]:
    """Regular `.csv` and `.csv.gz` files under `source` by relative path (sorted), hidden ones left out.

    Skipped entries are described in `notes`; `stats` receives each found file's stat (an
    `os.stat_result`, or the size and LastModified of the listing on object storage)."""
    notes = [] if notes is None else notes
    stats = {} if stats is None else stats
    found: dict[str, Location] = {}
    outputs: dict[str, str] = {}
    walk = _walk_local(source, notes) if isinstance(source, Path) else _walk_objects(source)
    for relative, path, found_stat in walk:
        stats[relative] = found_stat
        clash = outputs.get(output_name(relative))
        if clash:
            raise CompressError(
                f"{source}: {clash} and {relative} would both become {output_name(relative)}; keep one"
            )
        outputs[output_name(relative)] = relative
        found[relative] = path
    return dict(sorted(found.items()))


class _Round:
    """One pass over the changed files with one plan; records results in the manifest and report."""

    def __init__(self, dataset: _Dataset, plan: Plan, changed: list[str]) -> None:
        self.dataset = dataset
        self.plan = plan
        self.order = sorted(changed, key=lambda rel: (-dataset.stats[rel].st_size, rel))
        self.promotions: dict[str, pa.DataType] = {}
        self.results: dict[str, FileResult] = {}

    def _file_job(self, relative: str) -> FileJob:
        data = self.dataset
        source = data.sources[relative]
        return FileJob(source, relative, data.target, data.headers[source], self.plan, data.settings)

    def jobs(self) -> list[FileJob | PackJob]:
        packs = self.dataset.packs
        if not packs:
            return [self._file_job(rel) for rel in self.order]
        wanted = set(self.order)
        chosen = [pack for pack in packs if wanted.intersection(pack.members)]
        sizes = self.dataset.stats
        chosen.sort(key=lambda pack: (-sum(sizes[rel].st_size for rel in pack.members), pack.name))
        return [
            PackJob(pack.name, tuple(self._file_job(rel) for rel in pack.members if rel in wanted))
            for pack in chosen
        ]

    def record(self, outcome: JobOutcome) -> None:
        data = self.dataset
        if outcome.result is not None:
            for result in outcome.results():
                self.results[result.source] = result
        elif outcome.error is not None:
            data.report.errors.append(outcome.error)
        else:
            for column, data_type in outcome.promotions.items():
                self.promotions[column] = unify(self.promotions.get(column, pa.null()), data_type)

    def _resumed_jobs(self, progress: ProgressHook) -> list[FileJob | PackJob]:
        """The jobs left after taking what a failed run of the same plan finished (see `resume`)."""
        data = self.dataset
        kept = (
            resume.load(data.target, data.stats, settings=data.fingerprint, schema=self.plan.fingerprint())
            if isinstance(data.target, Path)
            else {}  # object storage: a failed round's temporaries are deleted (see `storage`)
        )
        planned, jobs = self.jobs(), []
        for job in planned:
            outputs = job.packed_outputs
            found = [kept.get(member.relative) for member in job.members]
            if all(item is not None and (outputs is None or item.outputs == outputs) for item in found):
                for item in found:
                    assert item is not None
                    self.results[item.source] = item
                    progress.advance(item.csv_bytes)
            else:
                jobs.append(job)
        if len(jobs) < len(planned):
            data.report.notes.append(f"resumed: {len(self.results)} files finished by an earlier failed run")
        return jobs

    def run(self, workers: _Workers, progress: ProgressHook, cluster: str = LOCAL) -> dict[str, pa.DataType]:
        """Convert every file of the round; return the promotions any of them needs."""
        total = sum(self.dataset.stats[rel].st_size for rel in self.order)
        progress.start(self.dataset.report.name, total)
        try:
            jobs = self._resumed_jobs(progress)
            if cluster != LOCAL:
                # a worker killed mid-file leaves its temporary; the retry writes a name of its own
                self.dataset.report.workers = run_on_cluster(
                    jobs, address=cluster, progress=progress, record=self.record
                )
            else:
                workers.run(jobs, progress, self.record)
        except BaseException:
            self.keep()
            raise
        finally:
            progress.stop()
        if self.promotions:
            self.discard()
            return self.promotions
        if self.dataset.report.errors:
            self.keep()
            raise CompressError("\n".join(self.dataset.report.errors))
        self.dataset.publish(self.results)
        if isinstance(self.dataset.target, Path):
            resume.clear(self.dataset.target)
        return {}

    def keep(self) -> None:
        """Keep the finished outputs of a failed round for the next run (`resume`; local targets)."""
        data = self.dataset
        if not isinstance(data.target, Path):
            self.discard()
            return
        resume.keep(
            data.target, self.results, data.stats, settings=data.fingerprint, schema=self.plan.fingerprint()
        )

    def discard(self) -> None:
        """Remove the staged outputs of this round (a failed or widened round publishes nothing)."""
        for result in self.results.values():
            for staged, _final in result.staged:
                with contextlib.suppress(OSError):  # a temporary left here is removed by the next run
                    storage.delete(self.dataset.target / staged)


def worker_count(jobs: int | None, *, files: int, total_bytes: int) -> int:
    """Worker processes for a run: `jobs` (default: one per core), at most one per file; one (this
    process) below POOL_MIN_BYTES when `jobs` is not given."""
    if jobs is None and total_bytes < POOL_MIN_BYTES:
        return 1  # starting worker processes costs more than it saves on small data
    return max(1, min(jobs or os.cpu_count() or 1, files))


class _Workers:
    """The process pool of one run, shared by the planning (dialect and samples of every file) and
    every round of conversion; with one worker, everything runs in this process.

    forkserver: workers fork from a clean server that imported labship (and pyarrow) once, so they
    start in milliseconds without inheriting this process's threads; spawn where it is missing.
    Workers never load pandas (see `_init_worker`)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.pool: ProcessPoolExecutor | None = None
        self.progress_queue: Any = None
        self._progress: ProgressHook | None = None

    def __enter__(self) -> _Workers:
        if self.count > 1:
            import multiprocessing

            try:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["labship.compress"])
            except ValueError:
                context = multiprocessing.get_context("spawn")
            self.progress_queue = context.Queue()
            self.pool = ProcessPoolExecutor(
                self.count, mp_context=context, initializer=_init_worker, initargs=(self.progress_queue,)
            )
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def map(self, function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """`function` over `items`, in order (in the workers when there are several)."""
        if self.pool is None:
            return [function(item) for item in items]
        return list(self.pool.map(function, items, chunksize=max(1, len(items) // (self.count * 8))))

    def run(self, jobs: list[FileJob], progress: ProgressHook, record: Callable[[JobOutcome], None]) -> None:
        """Run every job, recording each outcome as it arrives; progress from the workers' queue."""
        if self.pool is None:
            for job in jobs:
                record(run_job(job, progress.advance))
            return
        stop = threading.Event()

        def forward() -> None:
            while not stop.is_set() or not self.progress_queue.empty():
                try:
                    progress.advance(self.progress_queue.get(timeout=0.1))
                except queue.Empty:
                    continue

        forwarder = threading.Thread(target=forward, daemon=True)
        forwarder.start()
        try:
            running: set[Future[JobOutcome]] = {self.pool.submit(_pool_job, job) for job in jobs}
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    record(future.result())
        finally:
            stop.set()
            forwarder.join()


class _Dataset:
    """The state of one dataset's run: sources, stats, manifest, headers, report."""

    def __init__(self, report: DatasetReport, source: Location, target: Location, settings: Settings) -> None:
        self.report = report
        self.source = source
        self.target = target
        self.settings = settings
        self.fingerprint = settings.fingerprint()
        self.stats: dict[str, Any] = {}
        self.sources = find_sources(source, notes=report.notes, stats=self.stats)
        self.manifest = Manifest.load(target)
        self.headers: dict[Location, SourceHeader] = {}
        sizes = {relative: self.stats[relative].st_size for relative in self.sources}
        self.packs: list[Pack] = group(sizes, pack_bytes=settings.pack_bytes) if settings.pack_bytes else []

    def changed(self) -> list[str]:
        exists = storage.existence(self.target) if self.manifest.files else (lambda _path: False)
        return [
            rel
            for rel in self.sources
            if not self.manifest.is_current(
                rel, self.stats[rel], self.fingerprint, self.target, exists=exists
            )
        ]

    def gone(self) -> list[str]:
        return [rel for rel in self.manifest.files if rel not in self.sources]

    def publish(self, results: dict[str, FileResult]) -> None:
        """Rename every staged output into place, then record them in the manifest."""
        pairs = [
            (self.target / staged, self.target / final)
            for result in results.values()
            for staged, final in result.staged
        ]
        try:
            storage.publish_all(pairs)
        except OSError as error:
            raise CompressError(
                f"{self.target}: cannot put the new outputs in place: {storage.describe(error)} "
                f"({error.filename or 'object storage'})"
            ) from error
        for relative, result in sorted(results.items()):
            self._record(relative, result)

    def _record(self, relative: str, result: FileResult) -> None:
        self._enter(relative, result)
        if not result.rejected:
            _unlink(self.target / rejected_name(relative))  # the old side file no longer applies
        self.report.converted += 1
        self.report.converted_csv_bytes += result.csv_bytes

    def record_empty(self, relative: str) -> None:
        """Record a source skipped as empty (`on-bad-rows skip`): no output, nothing converted."""
        size = self.stats[relative].st_size
        self._enter(relative, FileResult(relative, [], 0, 0, size, 0, 0.0))

    def _enter(self, relative: str, result: FileResult) -> None:
        stat = self.stats[relative]
        self.manifest.files[relative] = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "settings": self.fingerprint,
            "outputs": result.outputs,
            "rows": result.rows,
            "rejected": result.rejected,
            "csv_bytes": result.csv_bytes,
            "parquet_bytes": result.parquet_bytes,
        }

    @property
    def csv_bytes(self) -> int:
        """The sources' total size."""
        return sum(stat.st_size for stat in self.stats.values())

    def remove_stale(self, previous: list[Location]) -> None:
        """Old outputs that no current source produces any more (resolved inside the target only)."""
        if isinstance(self.target, ObjectPath):
            current = {
                str(self.target / output)
                for entry in self.manifest.files.values()
                for output in entry.get("outputs", [])
            }
            for stale in previous:
                if (
                    str(stale) not in current
                    and isinstance(stale, ObjectPath)
                    and stale.is_relative_to(self.target)
                ):
                    _unlink(stale)
            return
        root = self.target.resolve()
        current = {
            (self.target / output).resolve()
            for entry in self.manifest.files.values()
            for output in entry.get("outputs", [])
        }
        for path in previous:
            real = path.parent.resolve() / path.name
            if real not in current and real.parent.is_relative_to(root) and not path.is_symlink():
                _unlink(path)


def _unlink(path: Location) -> None:
    try:
        storage.delete(path)
    except OSError as error:
        raise CompressError(f"{path}: cannot remove the old output: {storage.describe(error)}") from error


def dialect_notes(headers: dict[Location, Any], sources: dict[str, Location]) -> list[str]:
    """One note per dialect other than plain comma/LF/header, naming its files (up to 3)."""
    files: dict[str, list[str]] = {}
    for relative, path in sources.items():
        if path in headers and (summary := headers[path].dialect.summary()) != "comma, LF, header":
            files.setdefault(summary, []).append(relative)
    return [
        f"read as {summary}: {', '.join(names[:3])}"
        + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        for summary, names in files.items()
    ]


def _prepare_target(target: Location) -> None:
    if isinstance(target, ObjectPath):
        storage.check_bucket(target)
        storage.clean_temporaries(target)
        return
    try:
        target.mkdir(parents=True, exist_ok=True)
        storage.clean_temporaries(target)
    except OSError as error:
        raise CompressError(
            f"target {target}: cannot write there: {error.strerror or error}; fix its permissions or "
            "choose another target"
        ) from error
    if not os.access(target, os.W_OK | os.X_OK):
        raise CompressError(f"target {target}: not writable; fix its permissions or choose another target")


def _convert(
    data: _Dataset, changed: list[str], jobs: int | None, progress: ProgressHook, cluster: str = LOCAL
) -> None:
    """Plan (before touching the target), then rounds of conversion until no column widens."""
    sources = list(data.sources.values())
    if not sources:
        raise CompressError(f"{data.source}: no .csv or .csv.gz files found; put the CSV files there")
    with _Workers(worker_count(jobs, files=len(sources), total_bytes=data.csv_bytes)) as workers:
        _plan_and_convert(data, changed, workers, progress, cluster)


def _plan_and_convert(
    data: _Dataset, changed: list[str], workers: _Workers, progress: ProgressHook, cluster: str
) -> None:
    sources = list(data.sources.values())
    previous = [path for rel in data.manifest.files for path in data.manifest.outputs(rel, data.target)]
    plan, data.headers, notes = plan_dataset(
        sources, data.settings, total_bytes=data.csv_bytes, mapper=workers.map
    )
    data.report.notes += notes + dialect_notes(data.headers, data.sources)
    _prepare_target(data.target)
    if data.manifest.schema != plan.fingerprint() or data.manifest.settings != data.fingerprint:
        changed = list(data.sources)
    data.manifest.settings, data.manifest.schema = data.fingerprint, plan.fingerprint()
    if data.packs:  # a pack is rewritten whole: every member of a pack with a changed member
        recorded = {relative: entry.get("outputs") for relative, entry in data.manifest.files.items()}
        changed = [
            member for pack in packs_to_convert(data.packs, set(changed), recorded) for member in pack.members
        ]
    for _round in range(MAX_ROUNDS):
        changed = [rel for rel in changed if data.sources[rel] in data.headers]  # empty files were skipped
        data.report.dialects = {rel: data.headers[data.sources[rel]].dialect.describe() for rel in changed}
        promotions = _Round(data, plan, changed).run(workers, progress, cluster)
        if not promotions:
            break
        plan = plan.promoted(promotions)
        data.report.notes.append(
            "widened after reading past the samples: "
            + ", ".join(f"{column} -> {data_type}" for column, data_type in promotions.items())
        )
        data.manifest.schema = plan.fingerprint()
        data.report.converted, data.report.converted_csv_bytes, data.report.errors = 0, 0, []
        changed = list(data.sources)
    for relative in data.gone():
        del data.manifest.files[relative]
    for relative, path in data.sources.items():
        if path not in data.headers:  # skipped as empty: recorded, so the next run need not plan again
            data.record_empty(relative)
    available = list(dict.fromkeys(name for header in data.headers.values() for name in header.names))
    data.manifest.columns = {"kept": plan.columns, "available": available}
    data.manifest.save(data.target)
    data.remove_stale(previous)
    if cluster != LOCAL:
        storage.clean_temporaries(data.target)  # what zombie attempts of killed workers left


def _totals(report: DatasetReport, manifest: Manifest) -> None:
    for relative, entry in manifest.files.items():
        report.rows += entry["rows"]
        report.rejected_rows += entry["rejected"]
        report.csv_bytes += entry["csv_bytes"]
        report.parquet_bytes += entry["parquet_bytes"]
        if entry["rejected"]:
            report.rejected_files.append(rejected_name(relative))
    columns = manifest.columns.get("kept", [])
    report.columns_kept = len(columns)
    report.columns_dropped = len(manifest.columns.get("available", columns)) - len(columns)


def compress_dataset(
    name: str,
    source: Location,
    target: Location,
    settings: Settings,
    *,
    uplink_mbps: float = 24.5,
    jobs: int | None = None,
    progress: ProgressHook | None = None,
    cluster: str = LOCAL,
) -> DatasetReport:
    """Convert every source of a dataset that changed since the last run; see the module docstring."""
    started = time.perf_counter()
    validate(settings)
    use_lean_allocator()
    source = source if isinstance(source, ObjectPath) else Path(source)
    target = target if isinstance(target, ObjectPath) else Path(target)
    check_separate(source, target)
    report = DatasetReport(name=name, source=str(source), target=str(target), uplink_mbps=uplink_mbps)
    data = _Dataset(report, source, target, settings)
    changed = data.changed()
    if changed or data.gone() or data.manifest.settings != data.fingerprint:
        _convert(data, changed, jobs, progress or ProgressHook(), cluster)
    report.files = len(data.sources)
    report.skipped = report.files - report.converted - len(report.errors)
    _totals(report, data.manifest)
    report.seconds = time.perf_counter() - started
    return report
