"""Converting a dataset's files on a Dask distributed cluster instead of the local process pool.

The client does everything but the conversions, exactly as a local run: it finds the sources,
reads their dialects and headers, unifies the schema, and owns the manifest and the report. Each
`FileJob` becomes one task that runs `dataset.run_job` — the very function the local pool runs —
on some worker (a `PackJob` in the packed layout), so the bytes written are those of a local run.
Outcomes are recorded as they come back; a failed or interrupted run keeps the finished outputs of a
local target for the re-run (`labship.compress.resume`).

Workers read the sources and write the outputs at the same places as the client: local paths need
a filesystem they share (one machine, or a shared mount such as NFS/Lustre on HPC); `s3://` sources
and targets need only the object store, reached with the endpoint and credentials each job carries
(`labship.compress.endpoints`). Each output is written under a temporary name unique to the attempt
and published by the client once the run succeeded, so a killed worker leaves nothing partial under
a final name; the scheduler re-runs its tasks on another worker (`distributed.scheduler.allowed-
failures`), and a task that kills workers too often fails the run naming its file.

Progress: each task reports the bytes it converted as scheduler events (`Worker.log_event` on a
topic unique to the run, at most every `REPORT_EVERY_S`), which the client's subscription adds to
the bar; a finished file adds what its events had not said yet, so the total is exact whatever the
event timing, and a retried file never counts more than its size. The report carries per-worker
throughput.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labship.compress.errors import CompressError

if TYPE_CHECKING:
    from labship.compress.dataset import FileJob, JobOutcome
    from labship.compress.report import ProgressHook

LOCAL = "local"
CONNECT_TIMEOUT_S = 10  # a scheduler on the same network answers in milliseconds; 10 s covers a busy one
# a progress event per 16 MB block would be ~100 a second per worker on fast data; 4 a second keeps
# the bar smooth and the scheduler's event log small
REPORT_EVERY_S = 0.25


@dataclass(frozen=True)
class ClusterOutcome:
    """A job's outcome, with where and how fast it ran."""

    outcome: JobOutcome
    worker: str
    seconds: float
    csv_bytes: int


class _Reporter:
    """Worker side: sends the bytes one job converted as (job index, bytes) events, throttled."""

    def __init__(self, worker: Any, topic: str, index: int, every: float) -> None:
        self.worker, self.topic, self.index, self.every = worker, topic, index, every
        self.pending = 0
        self.sent_at = time.monotonic()

    def __call__(self, count: int) -> None:
        self.pending += count
        if time.monotonic() - self.sent_at >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.worker.log_event(self.topic, [self.index, self.pending])
            self.pending, self.sent_at = 0, time.monotonic()


class _Tally:
    """Client side: the bytes reported per job, capped at its size; a finished job adds the rest."""

    def __init__(self, progress: ProgressHook, sizes: list[int]) -> None:
        self.progress, self.sizes = progress, sizes
        self.reported = [0] * len(sizes)
        self.finished: set[int] = set()
        self.lock = threading.Lock()

    def _add(self, index: int, count: int) -> None:
        with self.lock:
            if index in self.finished:
                return
            count = max(0, min(count, self.sizes[index] - self.reported[index]))
            self.reported[index] += count
        if count:
            self.progress.advance(count)

    def on_event(self, event: tuple[float, Any]) -> None:
        index, count = event[1]
        self._add(int(index), int(count))

    def finish(self, index: int) -> None:
        self._add(index, self.sizes[index])
        with self.lock:
            self.finished.add(index)


def _cluster_job(job: FileJob, topic: str, index: int, every: float) -> ClusterOutcome:
    """Worker-side entry point: the local run's job function, timed, labelled with the worker, its
    converted bytes reported as events."""
    from distributed import get_worker

    from labship.compress.dataset import run_job

    worker = get_worker()
    reporter = _Reporter(worker, topic, index, every)
    started = time.perf_counter()
    outcome = run_job(job, reporter)
    reporter.flush()
    size = sum(result.csv_bytes for result in outcome.results())
    return ClusterOutcome(outcome, worker.address, time.perf_counter() - started, size)


def check_address(address: str) -> str:
    """A scheduler address as Dask takes it (`tcp://host:port`, `tls://…`, `inproc://…`), or `local`."""
    if address == LOCAL or ("://" in address and not address.startswith("-")):
        return address
    raise CompressError(
        f"--cluster {address!r}: give a Dask scheduler address such as tcp://scheduler:8786, or 'local' "
        "for this machine's process pool"
    )


def _connect(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError as error:
        raise CompressError(
            "--cluster needs Dask's distributed scheduler client: pip install 'labship[cluster]'"
        ) from error
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise CompressError(
            f"cluster {address}: cannot reach the Dask scheduler ({error}); check the address and that "
            "the scheduler is running"
        ) from error


def run_on_cluster(
    jobs: list[FileJob],
    *,
    address: str,
    progress: ProgressHook,
    record: Callable[[JobOutcome], None],
) -> dict[str, dict[str, float]]:
    """Run `jobs` on the scheduler at `address`; record each outcome; return per-worker totals."""
    from distributed import as_completed

    workers: dict[str, dict[str, float]] = {}
    run_id = uuid.uuid4().hex[:8]
    topic = f"labship-compress-progress-{run_id}"
    tally = _Tally(progress, [job.source_bytes() for job in jobs])
    with _connect(address) as client:
        client.subscribe_topic(topic, tally.on_event)
        try:
            futures = {
                client.submit(
                    _cluster_job,
                    job,
                    topic,
                    index,
                    REPORT_EVERY_S,
                    key=f"labship-compress-{run_id}-{index}",
                    pure=False,
                ): index
                for index, job in enumerate(jobs)
            }
            for future in as_completed(futures, loop=client.loop):
                index = futures[future]
                _collect(future, jobs[index], workers, record)
                tally.finish(index)
        finally:
            client.unsubscribe_topic(topic)
    return workers


def _collect(
    future: Any, job: FileJob, workers: dict[str, dict[str, float]], record: Callable[[JobOutcome], None]
) -> None:
    """Record one finished task's outcome and add it to its worker's totals."""
    from distributed.scheduler import KilledWorker

    try:
        done: ClusterOutcome = future.result()
    except KilledWorker as error:
        raise CompressError(
            f"{job.source}: the cluster lost every worker that tried to convert this file "
            f"({error}); re-run to resume (converted files are kept)"
        ) from error
    totals = workers.setdefault(done.worker, {"files": 0, "csv_bytes": 0, "seconds": 0.0})
    totals["files"] += 1
    totals["csv_bytes"] += done.csv_bytes
    totals["seconds"] += done.seconds
    record(done.outcome)
