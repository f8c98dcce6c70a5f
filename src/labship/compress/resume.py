"""Resuming a failed or interrupted run: the files it finished are kept for the next run.

A run publishes nothing until every file of it succeeded, so a failure leaves the previous outputs
in place. The files it did finish are not thrown away: their verified outputs move into
`RESUME_DIR` inside the target (a name of labship's temporary pattern, so DVC ignores it, but a
directory, so cleaning temporaries leaves it) with a record of what each was made from: the source's
size and mtime, the settings and schema fingerprints. The next run takes every recorded file whose
source, settings and schema are unchanged instead of converting it again, and publishes it with the
rest; a successful run removes the directory. A record that does not match, or names a path outside
the directory, is ignored.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import Any

from labship._fs import TEMP_SUFFIX
from labship.compress.errors import CompressError
from labship.compress.pipeline import FileResult
from labship.report import write_json_atomic

RESUME_DIR = ".labship-resume" + TEMP_SUFFIX
RECORD = "resume.json"


def _inside(relative: str, prefix: str) -> bool:
    parts = PurePosixPath(relative).parts
    return (
        bool(relative)
        and not PurePosixPath(relative).is_absolute()
        and ".." not in parts
        and "\\" not in relative
        and (not prefix or relative.startswith(prefix + "/"))
    )


def keep(
    target: Path,
    results: dict[str, FileResult],
    stats: dict[str, os.stat_result],
    *,
    settings: str,
    schema: str,
) -> int:
    """Move the staged outputs of `results` into RESUME_DIR and record them; return how many."""
    kept: dict[str, Any] = {}
    try:
        for relative, result in sorted(results.items()):
            staged = []
            for temporary, final in result.staged:
                destination = temporary if temporary.startswith(RESUME_DIR + "/") else f"{RESUME_DIR}/{final}"
                if destination != temporary:
                    (target / destination).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(target / temporary, target / destination)
                staged.append([destination, final])
            stat = stats[relative]
            kept[relative] = {
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "result": {**asdict(result), "staged": staged},
            }
        if kept:
            record = {"settings": settings, "schema": schema, "files": kept}
            write_json_atomic(target / RESUME_DIR / RECORD, record)
    except OSError as error:
        raise CompressError(
            f"{target}: cannot keep the finished outputs for a re-run: {error.strerror or error} "
            f"({error.filename})"
        ) from error
    return len(kept)


def _result(entry: Any, target: Path) -> FileResult | None:
    try:
        fields = dict(entry["result"])
        staged = [(str(temporary), str(final)) for temporary, final in fields.pop("staged")]
        result = FileResult(**fields, staged=staged)
    except (KeyError, TypeError, ValueError):
        return None
    paths_ok = all(
        _inside(temporary, RESUME_DIR) and _inside(final, "") and (target / temporary).is_file()
        for temporary, final in staged
    )
    return result if paths_ok and all(_inside(output, "") for output in result.outputs) else None


def load(
    target: Path, stats: dict[str, os.stat_result], *, settings: str, schema: str
) -> dict[str, FileResult]:
    """The kept results still valid for these sources, settings and schema (see the module docstring)."""
    try:
        record = json.loads((target / RESUME_DIR / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict) or record.get("settings") != settings or record.get("schema") != schema:
        return {}
    found = {}
    files = record.get("files") if isinstance(record.get("files"), dict) else {}
    for relative, entry in files.items():
        stat = stats.get(relative)
        if stat is None or not isinstance(entry, dict):
            continue
        if entry.get("size") != stat.st_size or entry.get("mtime_ns") != stat.st_mtime_ns:
            continue
        result = _result(entry, target)
        if result is not None and result.source == relative:
            found[relative] = result
    return found


def clear(target: Path) -> None:
    """Remove what a failed run kept (after a successful run published everything)."""
    shutil.rmtree(target / RESUME_DIR, ignore_errors=True)
