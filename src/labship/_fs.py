"""File-system helpers shared by every module that writes: atomic writes and the state directory.

`write_atomic` is the one way labship writes a file it owns (config, tokens, manifests, reports,
samples): the bytes go to a unique temporary in the same directory (`mkstemp`: `O_CREAT|O_EXCL`,
so a stale or planted file of the same name is never reused), the temporary is `fchmod`ed to the
intended mode *before* any byte is written, flushed with `fsync`, then renamed over the target
(atomic on POSIX), and the directory entry is fsynced. A crash leaves either the old file or the
new one, never a mix, and at worst one temporary matching `TEMP_GLOB`, which `clean_temporaries`
removes and the generated `.dvcignore`/`.gitignore` ignore.

Modes: secrets are written `SECRET_MODE` (0600) whatever existed before; everything else follows
the process umask (`0o666 & ~umask`), as a file created by `open()` would.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

SECRET_MODE = 0o600
# One temporary-name pattern for every file labship writes: ".<name>.<random>.labship-tmp".
TEMP_SUFFIX = ".labship-tmp"
TEMP_GLOB = f".*{TEMP_SUFFIX}"
STATE_DIR = ".labship"


def umask_mode() -> int:
    """The mode a new regular file gets under the current umask (0o666 & ~umask)."""
    current = os.umask(0)
    os.umask(current)
    return 0o666 & ~current


@contextlib.contextmanager
def atomic_file(path: Path, *, mode: int | None = None, binary: bool = True) -> Iterator[IO]:
    """Open a unique temporary beside `path`; on clean exit fsync and rename it over `path`.

    `mode` None follows the umask; pass `SECRET_MODE` for secrets. On an exception the temporary
    is removed and `path` is left as it was.
    """
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(descriptor, umask_mode() if mode is None else mode)
        handle = os.fdopen(
            descriptor, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})
        )
    except BaseException:
        os.close(descriptor)
        os.unlink(temporary)
        raise
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_directory(path.parent)


def write_atomic(path: Path, data: bytes | str, *, mode: int | None = None) -> None:
    """Write `data` to `path` atomically (see the module docstring); `mode` None follows the umask."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_file(path, mode=mode) as handle:
        handle.write(payload)


def write_secret(path: Path, data: bytes | str) -> None:
    """Write a secret (token, credentials) atomically with mode 0600, whatever was there before."""
    write_atomic(path, data, mode=SECRET_MODE)


def fsync_directory(directory: Path) -> None:
    """Persist a rename in `directory` (best effort: some file systems refuse directory fsync)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def clean_temporaries(directory: Path) -> int:
    """Remove labship temporaries left by a killed run anywhere under `directory`; return the count."""
    removed = 0
    for leftover in Path(directory).rglob(TEMP_GLOB):
        if leftover.is_file() and not leftover.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
                removed += 1
    return removed
