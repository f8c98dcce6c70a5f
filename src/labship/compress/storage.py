"""Where bytes live: a local directory or an S3 prefix, behind one small set of functions.

A location is a `pathlib.Path` (local: every function below is the plain OS call the converter
always made, so local runs keep their path, speed and bytes) or an `ObjectPath`: `s3://bucket/key`
plus the `Endpoint` that reaches it. `ObjectPath` offers the few path operations the converter
uses on sources and outputs (`/`, `name`, `parent`, `relative_to`, `as_posix`, `stat`), so reading,
sampling, parsing and encoding run unchanged on both; only opening, listing, publishing and
deleting differ, and they are here. Objects are read and written through
`pyarrow.fs.S3FileSystem`, one per endpoint and process (workers build their own from the job).

Atomicity on object storage. One PUT, or one completed multipart upload, makes a whole object
appear at once, and an upload that never completes makes none. Outputs are nevertheless written
under *temporary keys* (`.<name>.<attempt>.labship-tmp` beside the final key, `attempt` unique per
try so a retried Dask task never writes the key a zombie attempt is still writing) and published
by a server-side copy to the final key once every file of the run succeeded, then the temporary is
deleted — the same contract as the local `os.replace` publish: a failed run, or one that must
widen a column and redo every file, leaves the previous outputs in place. Consequences: each
output is written twice on the server (the copy moves no bytes through the client or the workers
but costs server time proportional to its size, and one copy is limited to 5 GB per object);
between two copies a reader can see some new outputs beside old ones (the manifest, written last,
says which run is complete); a killed attempt leaves at most an incomplete multipart upload
(invisible; a bucket lifecycle rule `AbortIncompleteMultipartUpload` reclaims it) or a complete
temporary object, which the next run deletes before it writes anything.

Changes are detected from the listing: size and LastModified (pyarrow reports no ETag). Every PUT
sets a new LastModified, so a rewritten object reads as changed unless it kept its size and was
rewritten within the same second as the version the manifest recorded.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, NamedTuple
from urllib.parse import urlsplit

from labship._fs import TEMP_SUFFIX, write_atomic
from labship._fs import clean_temporaries as clean_local_temporaries
from labship.compress.errors import CompressError, printable

SCHEME = "s3://"
MASK = "****"
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3's bucket naming rules
# a refused connection fails at once; 10 s covers a slow network without hanging on a dead endpoint
CONNECT_TIMEOUT_S = 10
# a copy plus a delete is ~2 round trips (tens of ms on AWS): 10,000 outputs one at a time would take
# minutes of the client's time after the workers are done; 16 at once stays well under S3's request
# rates per prefix (3,500 writes/s)
PUBLISH_THREADS = 16


@dataclass(frozen=True)
class Credentials:
    """An S3 key pair (and session token); None values leave it to the AWS SDK's own chain."""

    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None

    def __repr__(self) -> str:  # Dask logs a failed task's arguments: never show a secret
        return f"Credentials({MASK if self.access_key else 'from the SDK chain'})"

    def secrets(self) -> list[str]:
        """Every value to mask in anything printed."""
        return [value for value in (self.secret_key, self.session_token, self.access_key) if value]


@dataclass(frozen=True)
class Endpoint:
    """Which S3 API server to talk to and as whom; the origins say where each setting came from."""

    url: str | None = None  # e.g. http://127.0.0.1:9000; None: AWS itself
    region: str | None = None
    credentials: Credentials = field(default_factory=Credentials)
    origin: str = "the AWS SDK's default chain"  # of the credentials
    url_origin: str = "the AWS default"

    def mask(self, text: str) -> str:
        """`text` with every credential value replaced by ****."""
        for secret in self.credentials.secrets():
            text = text.replace(secret, MASK)
        return text


class ObjectStat(NamedTuple):
    """What the converter reads of a stat: size and modification time (LastModified on S3)."""

    st_size: int
    st_mtime_ns: int


@dataclass(frozen=True)
class ObjectPath:
    """An object or prefix `s3://bucket/key`; path-like enough for the converter (see the module doc)."""

    bucket: str
    key: str
    endpoint: Endpoint = field(default_factory=Endpoint, repr=False)
    listed: ObjectStat | None = field(default=None, compare=False, repr=False)  # from the run's listing

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}" if self.key else f"{SCHEME}{self.bucket}"

    def __truediv__(self, other: str | PurePosixPath) -> ObjectPath:
        key = str(PurePosixPath(self.key, other)) if self.key else str(PurePosixPath(other))
        return ObjectPath(self.bucket, key, self.endpoint)

    @property
    def fs_path(self) -> str:
        """The path pyarrow's S3 filesystem takes: `bucket/key`."""
        return f"{self.bucket}/{self.key}" if self.key else self.bucket

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name

    @property
    def parent(self) -> ObjectPath:
        parent = str(PurePosixPath(self.key).parent)
        return ObjectPath(self.bucket, "" if parent == "." else parent, self.endpoint)

    def with_name(self, name: str) -> ObjectPath:
        return self.parent / name

    def relative_to(self, other: ObjectPath) -> PurePosixPath:
        if other.bucket != self.bucket:
            raise ValueError(f"{self} is not under {other}")
        return PurePosixPath(self.key).relative_to(other.key) if other.key else PurePosixPath(self.key)

    def is_relative_to(self, other: ObjectPath) -> bool:
        return self.bucket == other.bucket and (
            not other.key or PurePosixPath(self.key).is_relative_to(other.key)
        )

    def as_posix(self) -> str:
        return str(self)

    def stat(self) -> ObjectStat:
        """The listed size and time, or a HEAD request; FileNotFoundError when there is no object."""
        if self.listed is not None:
            return self.listed
        import pyarrow.fs as pafs

        info = _call(self, lambda fs: fs.get_file_info(self.fs_path), "read")
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(f"{self}: no such object")
        return ObjectStat(info.size, info.mtime_ns or 0)

    def is_file(self) -> bool:
        try:
            self.stat()
        except FileNotFoundError:
            return False
        return True


Location = Path | ObjectPath

_filesystems: dict[Endpoint, Any] = {}
_lock = threading.Lock()


def filesystem(endpoint: Endpoint) -> Any:
    """The `pyarrow.fs.S3FileSystem` of `endpoint`, built once per process."""
    with _lock:
        found = _filesystems.get(endpoint)
        if found is None:
            import pyarrow.fs as pafs

            options: dict[str, Any] = {}
            if endpoint.url:
                parts = urlsplit(endpoint.url)
                options = {"scheme": parts.scheme or "https", "endpoint_override": parts.netloc}
            credentials = endpoint.credentials
            found = _filesystems[endpoint] = pafs.S3FileSystem(
                access_key=credentials.access_key,
                secret_key=credentials.secret_key,
                session_token=credentials.session_token,
                region=endpoint.region,
                connect_timeout=CONNECT_TIMEOUT_S,
                **options,
            )
        return found


def _call(path: ObjectPath, operation: Callable[[Any], Any], verb: str) -> Any:
    """Run `operation` on the path's filesystem; an S3 failure becomes an OSError naming the object
    (never a credential), a missing object a FileNotFoundError."""
    try:
        return operation(filesystem(path.endpoint))
    except FileNotFoundError:
        raise
    except OSError as error:
        detail = path.endpoint.mask(printable(str(error), 300))
        hint = ""
        if any(
            word in detail for word in ("ACCESS_DENIED", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403")
        ):
            hint = f"; check the credentials (from {path.endpoint.origin})"
        elif "NETWORK_CONNECTION" in detail or "connect" in detail.lower():
            hint = f"; check the endpoint ({path.endpoint.url or 'AWS'}, from {path.endpoint.url_origin})"
        raise OSError(f"{path}: cannot {verb}: {detail}{hint}") from None


def describe(error: OSError) -> str:
    """An OSError as a message: local ones by strerror, S3 ones (already naming the object) whole."""
    return error.strerror or str(error)


# --- reading --------------------------------------------------------------------------------------
def open_read(path: Location) -> IO[bytes]:
    """A binary stream of the bytes at `path` (seekable); OSError when it cannot be opened."""
    if isinstance(path, Path):
        return open(path, "rb")
    return _call(path, lambda fs: fs.open_input_file(path.fs_path), "open")  # type: ignore[no-any-return]


def read_bytes(path: Location) -> bytes | None:
    """The whole content of `path`, or None when there is nothing there."""
    try:
        if isinstance(path, Path):
            return path.read_bytes()
        with open_read(path) as stream:
            return stream.read()
    except FileNotFoundError:
        return None


def parquet_metadata(path: Location) -> Any:
    """The Parquet footer of `path`."""
    import pyarrow.parquet as pq

    if isinstance(path, Path):
        return pq.read_metadata(path)
    return _call(path, lambda fs: pq.read_metadata(path.fs_path, filesystem=fs), "read")


# --- writing --------------------------------------------------------------------------------------
def attempt_temporary(path: Location, attempt: str) -> Location:
    """The in-progress name of `path` for one attempt: hidden, `attempt` in it, labship's suffix."""
    return path.with_name(f".{path.name}.{attempt}{TEMP_SUFFIX}")


def make_parent(path: Location) -> None:
    """Create the directory that will hold `path` (object storage has none to create)."""
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)


def parquet_destination(path: Location) -> tuple[Any, Any]:
    """(where, filesystem) for `pyarrow.parquet.ParquetWriter`: the local path as is, or the object."""
    if isinstance(path, Path):
        return path, None
    return path.fs_path, filesystem(path.endpoint)


def open_write(path: Location) -> IO[bytes]:
    """A binary stream that creates `path` (an object appears whole when the stream is closed)."""
    if isinstance(path, Path):
        return open(path, "wb")
    return _call(path, lambda fs: fs.open_output_stream(path.fs_path), "write")  # type: ignore[no-any-return]


def write_whole(path: Location, data: bytes) -> None:
    """Replace `path` by `data` at once: an atomic rename locally, one PUT on object storage."""
    if isinstance(path, Path):
        make_parent(path)
        write_atomic(path, data)
        return
    with open_write(path) as stream:
        stream.write(data)


def publish(staged: Location, final: Location) -> None:
    """Put a staged output under its final name: a rename, or a server-side copy then a delete."""
    if isinstance(staged, Path) and isinstance(final, Path):
        os.replace(staged, final)
        return
    assert isinstance(staged, ObjectPath) and isinstance(final, ObjectPath)
    _call(final, lambda fs: fs.copy_file(staged.fs_path, final.fs_path), "write")
    delete(staged)


def publish_all(pairs: list[tuple[Location, Location]]) -> None:
    """`publish` every (staged, final) pair: renames in order; copies `PUBLISH_THREADS` at a time
    (each is one round trip that moves no bytes through us). The first failure is raised."""
    if not any(isinstance(final, ObjectPath) for _staged, final in pairs):
        for staged, final in pairs:
            publish(staged, final)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(PUBLISH_THREADS, thread_name_prefix="s3-publish") as pool:
        for future in [pool.submit(publish, staged, final) for staged, final in pairs]:
            future.result()


def delete(path: Location) -> None:
    """Remove `path` if it is there."""
    if isinstance(path, Path):
        path.unlink(missing_ok=True)
        return
    with contextlib.suppress(FileNotFoundError):
        _call(path, lambda fs: fs.delete_file(path.fs_path), "delete")


# --- listing --------------------------------------------------------------------------------------
def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def _listing(root: ObjectPath) -> list[Any]:
    """Every entry under the prefix `root` (recursive; none when it does not exist)."""
    import pyarrow.fs as pafs

    selector = pafs.FileSelector(root.fs_path, recursive=True, allow_not_found=True)
    try:
        return _call(root, lambda fs: fs.get_file_info(selector), "list")  # type: ignore[no-any-return]
    except OSError as error:  # it names the prefix already
        raise CompressError(str(error)) from None


def walk_objects(root: ObjectPath) -> Iterator[tuple[str, ObjectPath]]:
    """Every object under the prefix `root` (sorted, hidden names left out) with its listed stat."""
    import pyarrow.fs as pafs

    selector_root = root.fs_path
    infos = _listing(root)
    prefix = selector_root + "/"
    for info in sorted(infos, key=lambda item: item.path):
        relative = info.path[len(prefix) :]
        if info.type != pafs.FileType.File or not info.path.startswith(prefix) or _hidden(relative):
            continue
        yield (
            relative,
            ObjectPath(
                root.bucket,
                info.path[len(root.bucket) + 1 :],
                root.endpoint,
                ObjectStat(info.size, info.mtime_ns or 0),
            ),
        )


def check_bucket(root: ObjectPath) -> None:
    """Refuse a bucket that does not exist, naming where the endpoint came from."""
    import pyarrow.fs as pafs

    try:
        info = _call(root, lambda fs: fs.get_file_info(root.bucket), "reach its bucket")
    except OSError as error:
        raise CompressError(str(error)) from None
    if info.type == pafs.FileType.NotFound:
        raise CompressError(
            f"{root}: bucket {root.bucket!r} does not exist at {root.endpoint.url or 'AWS'} "
            f"(endpoint from {root.endpoint.url_origin}); create it or fix the URL"
        )


def existence(root: Location) -> Callable[[Location], bool]:
    """A test of whether an output under `root` exists: a stat locally, one listing on S3."""
    if isinstance(root, Path):
        return lambda path: path.is_file()  # type: ignore[union-attr]
    present = {str(path) for _relative, path in walk_objects(root)}
    return lambda path: str(path) in present


def clean_temporaries(root: Location) -> int:
    """Remove labship temporaries left by killed runs anywhere under `root`; return the count."""
    if isinstance(root, Path):
        return clean_local_temporaries(root)
    import pyarrow.fs as pafs

    removed = 0
    for info in _listing(root):
        name = info.path.rsplit("/", 1)[-1]
        if info.type == pafs.FileType.File and name.startswith(".") and name.endswith(TEMP_SUFFIX):
            try:
                delete(ObjectPath(root.bucket, info.path[len(root.bucket) + 1 :], root.endpoint))
            except OSError as error:
                raise CompressError(f"{error}; the target keeps a temporary of a killed run") from None
            removed += 1
    return removed


def check_separate_objects(source: Location, target: Location) -> None:
    """Refuse a target prefix equal to, inside or above the source prefix (same bucket)."""
    if not (isinstance(source, ObjectPath) and isinstance(target, ObjectPath)):
        return  # one local, one on object storage: separate by construction
    if source.bucket != target.bucket:
        return
    refuse_overlap(
        source,
        target,
        same=source.key == target.key,
        inside=target.is_relative_to(source),
        contains=source.is_relative_to(target),
        what="prefix",
    )


def refuse_overlap(
    source: object, target: object, *, same: bool, inside: bool, contains: bool, what: str
) -> None:
    """The one wording of every overlapping source/target refusal (directories and prefixes)."""
    if same:
        raise CompressError(f"target {target} is the source {what}; choose another --target / `target`")
    if inside:
        raise CompressError(
            f"target {target} is inside the source {source}: each run would read its own outputs; "
            "choose a target outside the source"
        )
    if contains:
        raise CompressError(
            f"target {target} contains the source {source}: outputs and sources would mix; "
            "choose a target outside the source"
        )


def parse_url(url: str, endpoint: Endpoint) -> ObjectPath:
    """`s3://bucket/prefix` as an ObjectPath; refuses credentials in the URL and malformed ones."""
    parts = urlsplit(url)
    if "@" in parts.netloc or ":" in parts.netloc:  # user:secret@bucket, or a secret with a `/` in it
        raise CompressError(
            "an s3:// URL must not carry credentials (they would show in `ps` and shell history): "
            "use LABSHIP_ACCESS_KEY_ID/LABSHIP_SECRET_ACCESS_KEY or the DVC remote's credentials"
        )
    if parts.scheme != "s3" or not BUCKET.fullmatch(parts.netloc):
        raise CompressError(
            f"s3://{parts.netloc}: give an object-storage location as s3://BUCKET/PREFIX "
            "(a bucket name is 3-63 characters: lowercase letters, digits, dots and hyphens)"
        )
    if parts.query or parts.fragment:
        raise CompressError(f"{url}: an s3:// location takes no ?query or #fragment")
    key = "/".join(part for part in parts.path.split("/") if part)
    if any(part in (".", "..") for part in key.split("/")):
        raise CompressError(f"{url}: `.` and `..` have no meaning in an object key; give the plain prefix")
    return ObjectPath(parts.netloc, key, endpoint)
